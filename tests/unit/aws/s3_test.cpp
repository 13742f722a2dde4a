// The S3 client's parsers and request shapes, no network: s3:// URLs and
// bucket names, path-style and virtual-hosted targets, ListObjectsV2 pages
// (pagination, ETag quotes, malformed sizes), the error document, Content-MD5.
#include "aws/s3.h"

#include <gtest/gtest.h>

#include "aws/xml.h"

namespace cloudkeep::aws {
namespace {

TEST(S3Url, BucketAndPrefix) {
  auto a = ParseS3Url("s3://my-bucket/hosts/db1");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->bucket, "my-bucket");
  EXPECT_EQ(a->prefix, "hosts/db1/");
  EXPECT_EQ(a->ToString(), "s3://my-bucket/hosts/db1/");
  auto b = ParseS3Url("s3://my.bucket.1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->bucket, "my.bucket.1");
  EXPECT_EQ(b->prefix, "");
  auto c = ParseS3Url("s3://abc/p/");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->prefix, "p/");
}

TEST(S3Url, RefusesBadValuesNamingThem) {
  for (const char* bad :
       {"s3://", "s3://ab", "s3://Upper", "s3://-abc", "s3://abc-", "s3://a..b", "s3://a_b_c",
        "http://bucket/x", "s3://abc//x", "s3://abc/x/../y", "s3://abc/./y", "s3://abc/a\\b"}) {
    auto r = ParseS3Url(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kUsage) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  }
  std::string longname = "s3://" + std::string(64, 'a');
  EXPECT_FALSE(ParseS3Url(longname).ok());
  EXPECT_TRUE(ParseS3Url("s3://" + std::string(63, 'a')).ok());
}

TEST(S3Target, PathStyleForCustomEndpoints) {
  auto t = S3RequestTarget("http://127.0.0.1:8080", S3Addressing::kAuto, "bkt", "chunks/ab/c d");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "127.0.0.1:8080");
  EXPECT_EQ(t->path, "/bkt/chunks/ab/c d");
  EXPECT_EQ(t->url, "http://127.0.0.1:8080/bkt/chunks/ab/c%20d");
  auto list = S3RequestTarget("http://127.0.0.1:8080/", S3Addressing::kPath, "bkt", "");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->path, "/bkt");
}

TEST(S3Target, VirtualHostedForAwsAndOnRequest) {
  auto t = S3RequestTarget(DefaultS3Endpoint("eu-west-1"), S3Addressing::kAuto, "bkt", "k");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "bkt.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(t->url, "https://bkt.s3.eu-west-1.amazonaws.com/k");
  // A dotted bucket would not match the wildcard certificate: path-style.
  auto d = S3RequestTarget(DefaultS3Endpoint("us-east-1"), S3Addressing::kAuto, "a.b", "k");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "s3.amazonaws.com");
  EXPECT_EQ(d->path, "/a.b/k");
  auto v = S3RequestTarget("http://localhost:9000", S3Addressing::kVirtual, "bkt", "");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->host, "bkt.localhost:9000");
  EXPECT_EQ(v->path, "/");
  EXPECT_FALSE(S3RequestTarget("ftp://x", S3Addressing::kAuto, "bkt", "k").ok());
}

TEST(S3Xml, ListObjectsV2Page) {
  const char* xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bkt</Name><Prefix>p/chunks/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>p/chunks/aa/one</Key><LastModified>2026-12-01T00:00:00.000Z</LastModified>
    <ETag>&quot;9a0364b9e99bb480dd25e1f0284c8555&quot;</ETag><Size>524288</Size>
    <StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>p/chunks/bb/two &amp; more</Key><ETag>"x-2"</ETag><Size>0</Size></Contents>
</ListBucketResult>)";
  auto doc = ParseXml(xml);
  ASSERT_TRUE(doc.ok());
  auto page = ParseListObjectsV2(*doc);
  ASSERT_TRUE(page.ok()) << page.status().message();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "p/chunks/aa/one");
  EXPECT_EQ(page->objects[0].size, 524288u);
  EXPECT_EQ(page->objects[0].etag, "9a0364b9e99bb480dd25e1f0284c8555");
  EXPECT_EQ(page->objects[1].key, "p/chunks/bb/two & more");
  EXPECT_EQ(page->objects[1].etag, "x-2");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3Xml, LastAndEmptyPages) {
  auto doc = ParseXml(
      "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
      "</ListBucketResult>");
  ASSERT_TRUE(doc.ok());
  auto page = ParseListObjectsV2(*doc);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->objects.empty());
  EXPECT_FALSE(page->truncated);
}

TEST(S3Xml, RefusesMalformedListings) {
  for (const char* xml : {
           "<ListAllMyBucketsResult/>",
           "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
           "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999999</Size>"
           "</Contents></ListBucketResult>",
       }) {
    auto doc = ParseXml(xml);
    ASSERT_TRUE(doc.ok()) << xml;
    EXPECT_FALSE(ParseListObjectsV2(*doc).ok()) << xml;
  }
}

TEST(S3Xml, ErrorDocument) {
  auto doc = ParseXml(
      "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket "
      "does not exist</Message><BucketName>nope</BucketName><RequestId>tx0001</RequestId>"
      "</Error>");
  ASSERT_TRUE(doc.ok());
  auto e = ParseS3Error(*doc);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "NoSuchBucket");
  EXPECT_EQ(e->request_id, "tx0001");
  auto other = ParseXml("<ListBucketResult/>");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(ParseS3Error(*other).has_value());
}

TEST(S3Integrity, ContentMd5) {
  // RFC 1864's header is the base64 of the 16-byte digest.
  EXPECT_EQ(ContentMd5(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(Md5Hex("The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6");
}

}  // namespace
}  // namespace cloudkeep::aws
