// The AWS provider's pieces that need no network: EC2 XML shapes, the error
// envelope and its mapping to exit classes, backoff with full jitter, the
// shared config files, NVMe device mapping and cloudkeep's tags.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "aws/credentials.h"
#include "aws/http.h"
#include "providers/aws/aws_provider.h"
#include "providers/aws/ec2_client.h"
#include "providers/aws/ec2_xml.h"

namespace cloudkeep::aws {
namespace {

namespace fs = std::filesystem;

TEST(Ec2Xml, DescribeSnapshotsWithTagsAndNextToken) {
  const char* xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <snapshotSet>
    <item>
      <snapshotId>snap-1234567890abcdef0</snapshotId>
      <volumeId>vol-1234567890abcdef0</volumeId>
      <status>pending</status>
      <startTime>2026-11-20T10:00:00.000Z</startTime>
      <progress>80%</progress>
      <ownerId>111122223333</ownerId>
      <volumeSize>15</volumeSize>
      <description>Daily &amp; weekly</description>
      <encrypted>false</encrypted>
      <tagSet>
        <item><key>cloudkeep:consistency</key><value>application</value></item>
        <item><key>cloudkeep:binlog_file</key><value>mysql-bin.000042</value></item>
        <item><key>cloudkeep:freeze_us</key><value>1234</value></item>
        <item><key>app</key><value>db</value></item>
      </tagSet>
    </item>
  </snapshotSet>
  <nextToken>tok:1</nextToken>
</DescribeSnapshotsResponse>)";
  auto doc = ParseXml(xml);
  ASSERT_TRUE(doc.ok()) << doc.status().message();
  auto page = ParseDescribeSnapshots(*doc);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->snapshots.size(), 1u);
  EXPECT_EQ(page->next_token, "tok:1");
  const auto& e = page->snapshots[0];
  EXPECT_EQ(e.id, "snap-1234567890abcdef0");
  EXPECT_EQ(e.state, "pending");
  EXPECT_EQ(e.volume_size_gib, 15u);
  EXPECT_EQ(e.description, "Daily & weekly");
  auto s = ToSnapshot(e);
  EXPECT_EQ(s.size_bytes, 15ull << 30);
  EXPECT_EQ(s.consistency, snapshot::Consistency::kApplication);
  EXPECT_EQ(s.database.at("binlog_file"), "mysql-bin.000042");
  EXPECT_EQ(*s.freeze_us, 1234);
  EXPECT_EQ(s.tags.size(), 1u);
  EXPECT_EQ(s.tags.at("app"), "db");
  EXPECT_EQ(FormatRfc3339(s.created), "2026-11-20T10:00:00Z");
}

TEST(Ec2Xml, CreateSnapshotsSaysStateNotStatus) {
  auto doc = ParseXml(R"(<CreateSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>x</requestId><snapshotSet><item><snapshotId>snap-0123456789abcdef0</snapshotId>
    <volumeId>vol-0123456789abcdef0</volumeId><state>pending</state><volumeSize>8</volumeSize></item>
    </snapshotSet></CreateSnapshotsResponse>)");
  ASSERT_TRUE(doc.ok());
  auto snaps = ParseCreateSnapshots(*doc);
  ASSERT_TRUE(snaps.ok());
  ASSERT_EQ(snaps->size(), 1u);
  EXPECT_EQ((*snaps)[0].state, "pending");
  EXPECT_FALSE(ParseCreateSnapshot(*doc).ok()) << "wrong root element must be refused";
}

TEST(Ec2Xml, DescribeVolumesAttachments) {
  auto doc = ParseXml(R"(<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <volumeSet><item><volumeId>vol-0123456789abcdef0</volumeId><size>100</size><volumeType>io2</volumeType>
    <availabilityZone>eu-west-1b</availabilityZone><status>in-use</status><attachmentSet><item>
    <instanceId>i-0123456789abcdef0</instanceId><device>/dev/sdf</device><status>attached</status>
    <deleteOnTermination>true</deleteOnTermination></item></attachmentSet></item></volumeSet>
    </DescribeVolumesResponse>)");
  ASSERT_TRUE(doc.ok());
  auto page = ParseDescribeVolumes(*doc);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->volumes.size(), 1u);
  const auto& v = page->volumes[0];
  EXPECT_EQ(v.size_gib, 100u);
  EXPECT_EQ(v.type, "io2");
  ASSERT_EQ(v.attachments.size(), 1u);
  EXPECT_EQ(v.attachments[0].device, "/dev/sdf");
  EXPECT_TRUE(v.attachments[0].delete_on_termination);
  EXPECT_TRUE(page->next_token.empty());
}

TEST(Ec2Xml, ErrorEnvelopeAndGarbage) {
  auto doc = ParseXml(R"(<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidSnapshot.InUse</Code><Message>The snapshot snap-1 is currently in use by ami-1</Message></Error></Errors><RequestID>r-1</RequestID></Response>)");
  ASSERT_TRUE(doc.ok());
  auto e = ParseError(*doc);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "InvalidSnapshot.InUse");
  EXPECT_EQ(e->request_id, "r-1");
  EXPECT_FALSE(ParseXml("<unclosed>").ok());
  EXPECT_FALSE(ParseXml("").ok());
  // Entities are not expanded from a DTD (no XXE, no billion laughs).
  auto xxe = ParseXml(R"(<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>)");
  if (xxe.ok()) {
    EXPECT_EQ(xxe->text.find("root:"), std::string::npos);
  }
}

TEST(Ec2Client, ErrorsMapToExitClasses) {
  Ec2Client c({"http://127.0.0.1:1", "eu-west-1"}, nullptr);
  auto st = [&](const std::string& code, const std::string& msg = "m") {
    return c.ErrorStatus("DeleteSnapshot", Ec2Error{code, msg, ""});
  };
  EXPECT_EQ(st("UnauthorizedOperation").code(), Status::Code::kFailure);
  EXPECT_NE(st("UnauthorizedOperation").message().find("ec2:DeleteSnapshot"), std::string::npos);
  EXPECT_EQ(st("AuthFailure").code(), Status::Code::kFailure);
  EXPECT_EQ(st("SignatureDoesNotMatch").code(), Status::Code::kFailure);
  EXPECT_NE(st("ExpiredToken").message().find("expired"), std::string::npos);
  EXPECT_EQ(st("AuthFailure", "Credential should be scoped to a valid region").code(),
            Status::Code::kUsage);
  EXPECT_EQ(st("InvalidSnapshotID.Malformed").code(), Status::Code::kUsage);
  EXPECT_EQ(st("InvalidVolume.NotFound").code(), Status::Code::kUsage);
}

TEST(Ec2Client, RetryableCodes) {
  EXPECT_TRUE(IsRetryable("RequestLimitExceeded", 503));
  EXPECT_TRUE(IsRetryable("Throttling", 400));
  EXPECT_TRUE(IsRetryable("", 502));
  EXPECT_FALSE(IsRetryable("InvalidSnapshot.InUse", 400));
  EXPECT_FALSE(IsRetryable("UnauthorizedOperation", 403));
}

TEST(Ec2Client, BackoffIsCappedFullJitter) {
  std::mt19937_64 rng(42);
  int max_seen = 0, min_seen = 1 << 30;
  for (int i = 0; i < 2000; ++i) {
    int d = BackoffMs(20, 50, 5000, rng);
    EXPECT_GE(d, 0);
    EXPECT_LE(d, 5000);
    max_seen = std::max(max_seen, d);
    min_seen = std::min(min_seen, d);
  }
  // Full jitter spreads over the whole range, not around the ceiling.
  EXPECT_LT(min_seen, 500);
  EXPECT_GT(max_seen, 4500);
  for (int i = 0; i < 100; ++i) EXPECT_LE(BackoffMs(0, 50, 5000, rng), 50);
  for (int i = 0; i < 100; ++i) EXPECT_LE(BackoffMs(2, 50, 5000, rng), 200);
}

TEST(Credentials, IniSectionsAndComments) {
  auto ini = ParseIni(
      "# c\n[default]\naws_access_key_id = AKID\n\n[profile ops]\nregion=eu-west-1 \n; x\n");
  EXPECT_EQ(ini["default"]["aws_access_key_id"], "AKID");
  EXPECT_EQ(ini["profile ops"]["region"], "eu-west-1");
}

TEST(Credentials, ChainOrderEnvThenFiles) {
  fs::path dir = fs::temp_directory_path() / ("ck-aws-cred-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "credentials")
      << "[ops]\naws_access_key_id = AKIDFILE\naws_secret_access_key = filesecret\n";
  std::ofstream(dir / "config") << "[profile ops]\nregion = ap-south-1\n";
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::unsetenv("AWS_REGION");
  ::unsetenv("AWS_DEFAULT_REGION");
  Imds disabled(ImdsOptions{"http://127.0.0.1:1", true});
  {
    CredentialChain chain({"ops", "", (dir / "credentials").string(), (dir / "config").string()},
                          &disabled);
    auto c = chain.Get();
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->access_key_id, "AKIDFILE");
    EXPECT_EQ(*chain.Region(), "ap-south-1");
  }
  {
    CredentialChain chain({"nosuch", "", (dir / "credentials").string(), (dir / "config").string()},
                          &disabled);
    EXPECT_EQ(chain.Get().status().code(), Status::Code::kUsage);
  }
  {
    ::setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    CredentialChain chain(
        {"", "us-east-2", (dir / "credentials").string(), (dir / "config").string()}, &disabled);
    EXPECT_EQ(chain.Get()->access_key_id, "AKIDENV");
    EXPECT_EQ(*chain.Region(), "us-east-2");
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
  }
  {
    CredentialChain chain({"", "", (dir / "none").string(), (dir / "none2").string()}, &disabled);
    auto c = chain.Get();
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.status().message().find("no AWS credentials"), std::string::npos);
    EXPECT_EQ(chain.Region().status().code(), Status::Code::kUsage);
  }
  fs::remove_all(dir);
}

TEST(AwsProvider, NvmeLinksMapVolumesNotPositions) {
  fs::path dir = fs::temp_directory_path() / ("ck-aws-byid-" + std::to_string(::getpid()));
  fs::create_directories(dir / "dev");
  std::ofstream(dir / "dev" / "nvme1n1") << "";
  std::ofstream(dir / "dev" / "nvme0n1") << "";
  fs::create_symlink(dir / "dev" / "nvme1n1",
                     dir / "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0");
  fs::create_symlink(dir / "dev" / "nvme0n1",
                     dir / "nvme-Amazon_Elastic_Block_Store_vol0fedcba9876543210");
  fs::create_symlink(dir / "dev" / "nvme0n1",
                     dir / "nvme-Amazon_Elastic_Block_Store_vol0fedcba9876543210-part1");
  fs::create_symlink(dir / "dev" / "nvme0n1",
                     dir / "nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1234");
  auto m = MapEbsDevices(dir.string());
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m["vol-0123456789abcdef0"], (dir / "dev" / "nvme1n1").string());
  EXPECT_EQ(m["vol-0fedcba9876543210"], (dir / "dev" / "nvme0n1").string());
  fs::remove_all(dir);
}

TEST(AwsProvider, IdsAndRegions) {
  EXPECT_TRUE(IsVolumeId("vol-0123456789abcdef0"));
  EXPECT_TRUE(IsVolumeId("vol-1a2b3c4d"));
  EXPECT_FALSE(IsVolumeId("vol-0123456789ABCDEF0"));
  EXPECT_FALSE(IsVolumeId("vol-xyz"));
  EXPECT_FALSE(IsVolumeId("/dev/sdf"));
  EXPECT_TRUE(IsRegionName("us-east-1"));
  EXPECT_TRUE(IsRegionName("ap-southeast-2"));
  EXPECT_TRUE(IsRegionName("us-gov-west-1"));
  EXPECT_FALSE(IsRegionName("mars"));
  EXPECT_FALSE(IsRegionName("US-EAST-1"));
}

TEST(AwsProvider, TagsRoundTrip) {
  snapshot::SnapshotMetadata meta;
  meta.consistency = snapshot::Consistency::kFilesystem;
  meta.tags = {{"env", "prod"}};
  meta.database = {{"binlog_file", "mysql-bin.000003"}, {"binlog_position", "154"}};
  auto tags = CreateTags(meta, "vol-0123456789abcdef0");
  EXPECT_EQ(tags["created-by"], "cloudkeep");
  EXPECT_EQ(tags["cloudkeep:volume"], "vol-0123456789abcdef0");
  Ec2Snapshot e;
  e.id = "snap-0123456789abcdef0";
  e.tags = tags;
  auto s = ToSnapshot(e);
  EXPECT_EQ(s.consistency, snapshot::Consistency::kFilesystem);
  EXPECT_EQ(s.database, meta.database);
  EXPECT_EQ(s.tags.at("env"), "prod");
  EXPECT_EQ(s.tags.count("cloudkeep:volume"), 0u);
}

TEST(Http, UrlHostKeepsNonDefaultPorts) {
  EXPECT_EQ(ParseUrl("https://ec2.eu-west-1.amazonaws.com")->host, "ec2.eu-west-1.amazonaws.com");
  EXPECT_EQ(ParseUrl("https://ec2.eu-west-1.amazonaws.com:443/")->host,
            "ec2.eu-west-1.amazonaws.com");
  EXPECT_EQ(ParseUrl("http://127.0.0.1:18000")->host, "127.0.0.1:18000");
  EXPECT_EQ(ParseUrl("ftp://x").status().code(), Status::Code::kUsage);
  EXPECT_EQ(ParseUrl("127.0.0.1").status().code(), Status::Code::kUsage);
}

}  // namespace
}  // namespace cloudkeep::aws
