// The etcd gateway's JSON, checked against replies captured from etcd 3.4.23.
#include "coord/etcd_json.h"

#include <gtest/gtest.h>

#include "coord/etcd_client.h"

namespace cloudkeep::coord {
namespace {

using nlohmann::json;

TEST(Base64, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    auto enc = Base64Encode(bytes);
    EXPECT_EQ(enc.size() % 4, 0u);
    auto dec = Base64Decode(enc);
    ASSERT_TRUE(dec.ok()) << dec.status().message();
    EXPECT_EQ(*dec, bytes);
    bytes.push_back(static_cast<char>(i * 37));
  }
}

TEST(Base64, KnownVectors) {
  // RFC 4648 section 10.
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xff\xfe\0", 3)), "//4A");
}

TEST(Base64, RejectsMalformed) {
  for (const char* bad :
       {"Zm9", "Zm9v=", "Zm=v", "Z===", "Zm9v\n", "Zm 9", "Zh==", "Zm9=Zm9v", "Zm-v", "Zm_v"}) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
  }
}

TEST(JsonInt64, StringsNumbersAndAbsent) {
  json j = {{"a", "12"}, {"b", 7},  {"c", "-1"}, {"d", "x"}, {"e", "9223372036854775808"},
            {"f", true}, {"g", ""}, {"h", "1 "}};
  EXPECT_EQ(*JsonInt64(j, "a"), 12);
  EXPECT_EQ(*JsonInt64(j, "b"), 7);
  EXPECT_EQ(*JsonInt64(j, "c"), -1);
  EXPECT_EQ(*JsonInt64(j, "missing"), 0);
  for (const char* bad : {"d", "e", "f", "g", "h"}) EXPECT_FALSE(JsonInt64(j, bad).ok()) << bad;
}

// Replies as etcd 3.4.23's gateway sent them.
TEST(ParseRange, KeyPresentAndAbsent) {
  auto present = json::parse(
      R"({"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709",)"
      R"("revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2",)"
      R"("mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"})");
  auto r = ParseRangeResponse(present);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->header.cluster_id, 15118495548433857066ull);
  EXPECT_EQ(r->header.revision, 2);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0], (KeyValue{"foo", "bar", 2, 2, 1, 0}));
  EXPECT_EQ(r->count, 1);

  auto absent = json::parse(R"({"header":{"cluster_id":"1","member_id":"2","revision":"2",)"
                            R"("raft_term":"2"}})");
  r = ParseRangeResponse(absent);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_EQ(r->count, 0);

  // An empty value is left out; a lease is a string.
  auto kv = ParseKeyValue(json::parse(R"({"key":"bm9uZQ==","create_revision":"6",)"
                                      R"("mod_revision":"10","version":"3","lease":"41"})"));
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->value, "");
  EXPECT_EQ(kv->lease, 41);
}

TEST(ParseRange, RejectsWrongShapes) {
  EXPECT_FALSE(ParseRangeResponse(json::parse(R"({"kvs":[]})")).ok());  // no header
  EXPECT_FALSE(ParseRangeResponse(json::parse(R"({"header":{},"kvs":{}})")).ok());
  EXPECT_FALSE(ParseRangeResponse(json::parse(R"({"header":{},"kvs":[{"key":"!"}]})")).ok());
  EXPECT_FALSE(ParseRangeResponse(json::parse(R"({"header":{"revision":1.5}})")).ok());
  EXPECT_FALSE(ParseRangeResponse(json::parse(R"([1,2])")).ok());
}

TEST(Txn, EncodesCompareAndOps) {
  TxnRequest txn;
  txn.compare = {Compare::CreateRevision("leader", 0), Compare::Lease("leader", 77),
                 Compare::Value("v", "x", Compare::Result::kNotEqual),
                 Compare::ModRevision("m", 5, Compare::Result::kLess),
                 Compare::Version("n", 2, Compare::Result::kGreater)};
  txn.success = {Op::Put("leader", "a", 77), Op::Get("leader")};
  txn.failure = {Op::Delete("leader"), Op::Put("k", "")};
  json expect = json::parse(R"({
    "compare":[
      {"key":"bGVhZGVy","target":"CREATE","result":"EQUAL","create_revision":"0"},
      {"key":"bGVhZGVy","target":"LEASE","result":"EQUAL","lease":"77"},
      {"key":"dg==","target":"VALUE","result":"NOT_EQUAL","value":"eA=="},
      {"key":"bQ==","target":"MOD","result":"LESS","mod_revision":"5"},
      {"key":"bg==","target":"VERSION","result":"GREATER","version":"2"}],
    "success":[{"request_put":{"key":"bGVhZGVy","value":"YQ==","lease":"77"}},
               {"request_range":{"key":"bGVhZGVy"}}],
    "failure":[{"request_delete_range":{"key":"bGVhZGVy"}},
               {"request_put":{"key":"aw==","value":""}}]})");
  EXPECT_EQ(EncodeTxn(txn), expect) << EncodeTxn(txn).dump();
}

TEST(Txn, ParsesSucceededAndFailed) {
  auto won = ParseTxnResponse(json::parse(
      R"({"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"2"},)"
      R"("succeeded":true,"responses":[{"response_put":{"header":{"revision":"3"}}}]})"));
  ASSERT_TRUE(won.ok()) << won.status().message();
  EXPECT_TRUE(won->succeeded);
  EXPECT_EQ(won->header.revision, 3);
  ASSERT_EQ(won->responses.size(), 1u);
  EXPECT_EQ(won->responses[0].kind, Op::Kind::kPut);
  EXPECT_EQ(won->responses[0].revision, 3);

  // A false "succeeded" is left out.
  auto lost = ParseTxnResponse(json::parse(
      R"({"header":{"revision":"3"},"responses":[{"response_range":{"header":{"revision":"3"},)"
      R"("kvs":[{"key":"bGVhZGVy","create_revision":"3","mod_revision":"3","version":"1",)"
      R"("value":"YQ==","lease":"4111120376946371597"}],"count":"1"}}]})"));
  ASSERT_TRUE(lost.ok()) << lost.status().message();
  EXPECT_FALSE(lost->succeeded);
  ASSERT_EQ(lost->responses.size(), 1u);
  ASSERT_EQ(lost->responses[0].kvs.size(), 1u);
  EXPECT_EQ(lost->responses[0].kvs[0].lease, 4111120376946371597);
  EXPECT_EQ(lost->responses[0].kvs[0].value, "a");

  auto del = ParseTxnResponse(json::parse(
      R"({"header":{"revision":"8"},"succeeded":true,"responses":[{"response_delete_range":)"
      R"({"header":{"revision":"8"},"deleted":"1"}}]})"));
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->responses[0].deleted, 1);

  EXPECT_FALSE(ParseTxnResponse(json::parse(R"({"header":{},"succeeded":"yes"})")).ok());
  EXPECT_FALSE(
      ParseTxnResponse(json::parse(R"({"header":{},"responses":[{"response_x":{}}]})")).ok());
}

TEST(Lease, GrantKeepAliveTimeToLive) {
  auto g = ParseLeaseGrant(
      json::parse(R"({"header":{"revision":"1"},"ID":"4111120376946371590","TTL":"5"})"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->id, 4111120376946371590);
  EXPECT_EQ(g->ttl_seconds, 5);
  EXPECT_FALSE(ParseLeaseGrant(json::parse(R"({"header":{},"ID":"0","TTL":"5"})")).ok());

  auto ka = ParseKeepAliveTtl(json::parse(
      R"({"result":{"header":{"revision":"2"},"ID":"4111120376946371597","TTL":"5"}})"));
  ASSERT_TRUE(ka.ok());
  EXPECT_EQ(*ka, 5);
  // An expired or unknown lease: no TTL.
  ka = ParseKeepAliveTtl(json::parse(R"({"result":{"header":{"revision":"2"},"ID":"999"}})"));
  ASSERT_TRUE(ka.ok());
  EXPECT_EQ(*ka, 0);
  EXPECT_FALSE(ParseKeepAliveTtl(json::parse(R"({"header":{},"TTL":"5"})")).ok());

  auto ttl = ParseTimeToLive(json::parse(
      R"({"header":{"revision":"3"},"ID":"41","TTL":"4","grantedTTL":"5","keys":["bGVhZGVy"]})"));
  ASSERT_TRUE(ttl.ok());
  EXPECT_TRUE(ttl->exists);
  EXPECT_EQ(ttl->ttl_seconds, 4);
  EXPECT_EQ(ttl->granted_seconds, 5);
  EXPECT_EQ(ttl->keys, std::vector<std::string>{"leader"});
  ttl = ParseTimeToLive(json::parse(R"({"header":{"revision":"2"},"ID":"999","TTL":"-1"})"));
  ASSERT_TRUE(ttl.ok());
  EXPECT_FALSE(ttl->exists);
}

TEST(Errors, BothShapesAndTheirMeaning) {
  auto unary = ParseErrorReply(json::parse(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"));
  ASSERT_TRUE(unary);
  EXPECT_EQ(unary->code, GrpcCode::kNotFound);
  EXPECT_EQ(unary->message, "etcdserver: requested lease not found");
  EXPECT_FALSE(OutcomeUnknown(unary->code));

  auto stream = ParseErrorReply(json::parse(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})"));
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->code, GrpcCode::kUnavailable);
  EXPECT_TRUE(OutcomeUnknown(stream->code));

  EXPECT_FALSE(ParseErrorReply(json::parse(R"({"header":{"revision":"1"}})")));
  EXPECT_FALSE(ParseErrorReply(json::parse(R"({"header":{},"ID":"1","TTL":"5","error":""})")));
  auto odd = ParseErrorReply(json::parse(R"({"error":"x","code":99})"));
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->code, GrpcCode::kUnknown);
  EXPECT_TRUE(OutcomeUnknown(odd->code));

  EXPECT_TRUE(OutcomeUnknown(GrpcCode::kDeadlineExceeded));
  EXPECT_FALSE(OutcomeUnknown(GrpcCode::kInvalidArgument));
  EXPECT_FALSE(OutcomeUnknown(GrpcCode::kUnauthenticated));
}

TEST(IsUnreachable, OnlyTransportAndUndecided) {
  EXPECT_FALSE(IsUnreachable(Status::Ok()));
  EXPECT_FALSE(
      IsUnreachable(Status::Failure("etcd /v3/kv/put: etcdserver: requested lease not found")));
  EXPECT_FALSE(IsUnreachable(Status::FromErrno("open", ENOENT)));
  EXPECT_TRUE(IsUnreachable(Status::FromErrno("etcd", ECONNREFUSED)));
  EXPECT_TRUE(IsUnreachable(Status::FromErrno("etcd", ETIMEDOUT).Annotate("campaign")));
}

TEST(Options, EndpointsAreChecked) {
  EXPECT_EQ(EtcdClient::Create({}).status().code(), Status::Code::kUsage);
  EtcdOptions o;
  o.endpoints = {"127.0.0.1:2379"};
  EXPECT_EQ(EtcdClient::Create(o).status().code(), Status::Code::kUsage);
  o.endpoints = {"http://127.0.0.1:2379/v3"};
  EXPECT_EQ(EtcdClient::Create(o).status().code(), Status::Code::kUsage);
  o.endpoints = {"http://127.0.0.1:2379/", "https://[::1]:2379"};
  auto c = EtcdClient::Create(o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ((*c)->options().endpoints[0], "http://127.0.0.1:2379");
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(EtcdClient::Create(o).status().code(), Status::Code::kUsage);
  o.ca_file.clear();
  o.username = "root";
  EXPECT_EQ(EtcdClient::Create(o).status().code(), Status::Code::kUsage);
}

}  // namespace
}  // namespace cloudkeep::coord
