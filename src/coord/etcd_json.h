// The etcd v3 gRPC-gateway JSON encoding, as pure functions.
//
// etcd (3.4 here) serves its v3 API as JSON over HTTP POST: /v3/kv/range,
// /v3/kv/put, /v3/kv/txn, /v3/lease/grant and so on. The mapping is
// protobuf's JSON mapping (jsonpb): keys and values are base64 (bytes
// fields), int64 and uint64 fields are JSON strings ("revision": "12"), and a
// field with its zero value is left out (a false "succeeded", a 0 "TTL", an
// empty "value", an empty "kvs"). Errors come back with an HTTP error status
// and {"error": TEXT, "message": TEXT, "code": GRPC_CODE}; the streaming
// calls (lease keepalive) wrap each reply as {"result": {...}} or
// {"error": {"grpc_code", "http_code", "message"}}.
//
// This header is the wire layer of EtcdClient (etcd_client.h), exposed so that
// tests can check it without a server. Parsers accept exactly what the
// gateway sends and reject anything else with a Status that names the field.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cloudkeep::coord {

// RFC 4648 base64 with padding (Go's StdEncoding, as the gateway writes it).
std::string Base64Encode(std::string_view bytes);
// Strict: the standard alphabet, length a multiple of 4, padding only at
// the end, no white space, and zero bits after the last byte (canonical).
Result<std::string> Base64Decode(std::string_view text);

// An int64 field: a JSON string of decimal digits (optionally "-"), or a JSON
// integer; a missing field is 0. `what` names the field in errors.
Result<int64_t> JsonInt64(const nlohmann::json& object, const char* field);
// A bytes field, decoded; missing is "".
Result<std::string> JsonBytes(const nlohmann::json& object, const char* field);

// One key as etcd stores it (mvccpb.KeyValue).
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // the revision of the put that created this key's current life
  int64_t mod_revision = 0;     // the revision of its last put
  int64_t version = 0;          // puts since creation (1 after the create)
  int64_t lease = 0;            // attached lease, 0 for none
  bool operator==(const KeyValue&) const = default;
};
Result<KeyValue> ParseKeyValue(const nlohmann::json& j);

// The header every reply carries; `revision` is the store's revision when
// the request was served (after it, for a write).
struct ResponseHeader {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  int64_t revision = 0;
  uint64_t raft_term = 0;
};
Result<ResponseHeader> ParseHeader(const nlohmann::json& reply);

// --- transactions (etcdserverpb.TxnRequest) ---

struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue, kLease };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target = Target::kMod;
  Result result = Result::kEqual;
  int64_t number = 0;  // version, create/mod revision or lease id (all but kValue)
  std::string value;   // kValue only

  // A key that does not exist has version, create and mod revision 0 and
  // lease 0 in every comparison.
  static Compare CreateRevision(std::string key, int64_t rev, Result r = Result::kEqual);
  static Compare ModRevision(std::string key, int64_t rev, Result r = Result::kEqual);
  static Compare Version(std::string key, int64_t version, Result r = Result::kEqual);
  static Compare Lease(std::string key, int64_t lease, Result r = Result::kEqual);
  static Compare Value(std::string key, std::string value, Result r = Result::kEqual);
};

struct Op {
  enum class Kind { kRange, kPut, kDelete };
  Kind kind = Kind::kRange;
  std::string key;
  std::string value;  // kPut
  int64_t lease = 0;  // kPut: 0 detaches any lease
  static Op Get(std::string key);
  static Op Put(std::string key, std::string value, int64_t lease = 0);
  static Op Delete(std::string key);
};

struct TxnRequest {
  std::vector<Compare> compare;  // all must hold for `success` to run
  std::vector<Op> success;
  std::vector<Op> failure;
};

struct OpResponse {
  Op::Kind kind = Op::Kind::kRange;
  std::vector<KeyValue> kvs;  // kRange: the key, if it exists
  int64_t deleted = 0;        // kDelete
  int64_t revision = 0;       // the header revision of this operation
};

struct TxnResponse {
  bool succeeded = false;  // the compares held and `success` ran
  ResponseHeader header;   // header.revision: the txn's revision (new if it wrote)
  std::vector<OpResponse> responses;
};

nlohmann::json EncodeTxn(const TxnRequest& txn);
Result<TxnResponse> ParseTxnResponse(const nlohmann::json& reply);

// --- replies of the other calls ---

struct RangeResponse {
  ResponseHeader header;
  std::vector<KeyValue> kvs;
  int64_t count = 0;
};
Result<RangeResponse> ParseRangeResponse(const nlohmann::json& reply);

struct LeaseGrantResponse {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // granted, may be more than asked (etcd's minimum TTL)
};
Result<LeaseGrantResponse> ParseLeaseGrant(const nlohmann::json& reply);

// /v3/lease/keepalive: {"result": {"ID", "TTL"}}; a TTL of 0 (absent) means
// the lease no longer exists (expired or revoked).
Result<int64_t> ParseKeepAliveTtl(const nlohmann::json& reply);

struct LeaseTimeToLive {
  bool exists = false;            // false: expired, revoked or never granted (TTL -1)
  int64_t ttl_seconds = 0;        // remaining, rounded down
  int64_t granted_seconds = 0;    // as granted
  std::vector<std::string> keys;  // keys attached to it
};
Result<LeaseTimeToLive> ParseTimeToLive(const nlohmann::json& reply);

// The gRPC status codes etcd's errors use (google.golang.org/grpc/codes).
enum class GrpcCode : int {
  kOk = 0,
  kCanceled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// An error reply: either shape, with the HTTP status it came with.
struct EtcdErrorReply {
  GrpcCode code = GrpcCode::kUnknown;
  std::string message;  // "etcdserver: requested lease not found"
};
// The error in `body` if it is one ({"error": ...}); nullopt for a normal reply.
std::optional<EtcdErrorReply> ParseErrorReply(const nlohmann::json& body);
// Whether an error etcd returned leaves the request's outcome unknown: it may
// still be applied (a proposal that timed out, a leader change, no leader).
bool OutcomeUnknown(GrpcCode code);

}  // namespace cloudkeep::coord
