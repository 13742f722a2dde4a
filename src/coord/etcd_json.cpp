#include "coord/etcd_json.h"

#include <fmt/format.h>

#include <array>
#include <charconv>

namespace cloudkeep::coord {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr auto kDecode = MakeDecodeTable();

Status Bad(const std::string& what) {
  return Status::Failure("etcd reply: " + what);
}

// The compare target's enum name and the field that holds its operand.
struct TargetJson {
  const char* name;
  const char* field;
};
TargetJson TargetOf(Compare::Target t) {
  switch (t) {
    case Compare::Target::kVersion:
      return {"VERSION", "version"};
    case Compare::Target::kCreate:
      return {"CREATE", "create_revision"};
    case Compare::Target::kMod:
      return {"MOD", "mod_revision"};
    case Compare::Target::kValue:
      return {"VALUE", "value"};
    case Compare::Target::kLease:
      return {"LEASE", "lease"};
  }
  return {"MOD", "mod_revision"};
}

const char* ResultName(Compare::Result r) {
  switch (r) {
    case Compare::Result::kEqual:
      return "EQUAL";
    case Compare::Result::kGreater:
      return "GREATER";
    case Compare::Result::kLess:
      return "LESS";
    case Compare::Result::kNotEqual:
      return "NOT_EQUAL";
  }
  return "EQUAL";
}

nlohmann::json EncodeOp(const Op& op) {
  nlohmann::json body = {{"key", Base64Encode(op.key)}};
  switch (op.kind) {
    case Op::Kind::kRange:
      return {{"request_range", body}};
    case Op::Kind::kPut:
      body["value"] = Base64Encode(op.value);
      if (op.lease != 0) body["lease"] = std::to_string(op.lease);
      return {{"request_put", body}};
    case Op::Kind::kDelete:
      return {{"request_delete_range", body}};
  }
  return {};
}

Result<std::vector<KeyValue>> ParseKvs(const nlohmann::json& reply) {
  std::vector<KeyValue> out;
  if (!reply.contains("kvs")) return out;
  const auto& kvs = reply["kvs"];
  if (!kvs.is_array()) return Bad("\"kvs\" is not an array");
  for (const auto& kv : kvs) {
    CK_ASSIGN_OR_RETURN(KeyValue parsed, ParseKeyValue(kv));
    out.push_back(std::move(parsed));
  }
  return out;
}

Result<OpResponse> ParseOpResponse(const nlohmann::json& j) {
  if (!j.is_object()) return Bad("a txn response is not an object");
  OpResponse out;
  const nlohmann::json* body = nullptr;
  if (j.contains("response_range")) {
    out.kind = Op::Kind::kRange;
    body = &j["response_range"];
  } else if (j.contains("response_put")) {
    out.kind = Op::Kind::kPut;
    body = &j["response_put"];
  } else if (j.contains("response_delete_range")) {
    out.kind = Op::Kind::kDelete;
    body = &j["response_delete_range"];
  } else {
    return Bad("a txn response is none of range, put, delete_range");
  }
  if (!body->is_object()) return Bad("a txn response body is not an object");
  CK_ASSIGN_OR_RETURN(ResponseHeader header, ParseHeader(*body));
  out.revision = header.revision;
  CK_ASSIGN_OR_RETURN(out.kvs, ParseKvs(*body));
  CK_ASSIGN_OR_RETURN(out.deleted, JsonInt64(*body, "deleted"));
  return out;
}

Result<uint64_t> JsonUint64(const nlohmann::json& object, const char* field) {
  if (!object.contains(field)) return uint64_t{0};
  const auto& v = object[field];
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (!v.is_string()) return Bad(fmt::format("\"{}\" is not a string", field));
  const std::string& s = v.get_ref<const std::string&>();
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    return Bad(fmt::format("\"{}\" is not an unsigned integer", field));
  return n;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint8_t(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) n |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Bad("base64 length is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    uint32_t n = 0;
    for (int k = 0; k < 4; ++k) {
      int8_t d = k >= 4 - pad ? 0 : kDecode[static_cast<unsigned char>(text[i + k])];
      if (d < 0) return Bad("invalid base64");
      n = (n << 6) | uint32_t(d);
    }
    out += char((n >> 16) & 0xff);
    if (pad < 2) out += char((n >> 8) & 0xff);
    if (pad < 1) out += char(n & 0xff);
    // Non-canonical: bits set below the last whole byte.
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0))
      return Bad("non-canonical base64");
  }
  return out;
}

Result<int64_t> JsonInt64(const nlohmann::json& object, const char* field) {
  if (!object.is_object()) return Bad(fmt::format("no object holding \"{}\"", field));
  if (!object.contains(field)) return int64_t{0};
  const auto& v = object[field];
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
      return Bad(fmt::format("\"{}\" is out of range", field));
    return v.get<int64_t>();
  }
  if (!v.is_string()) return Bad(fmt::format("\"{}\" is not an integer string", field));
  const std::string& s = v.get_ref<const std::string&>();
  int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    return Bad(fmt::format("\"{}\" is not an integer: \"{}\"", field, s.substr(0, 40)));
  return n;
}

Result<std::string> JsonBytes(const nlohmann::json& object, const char* field) {
  if (!object.is_object()) return Bad(fmt::format("no object holding \"{}\"", field));
  if (!object.contains(field)) return std::string();
  const auto& v = object[field];
  if (!v.is_string()) return Bad(fmt::format("\"{}\" is not a string", field));
  auto decoded = Base64Decode(v.get_ref<const std::string&>());
  if (!decoded.ok()) return decoded.status().Annotate(fmt::format("\"{}\"", field));
  return decoded;
}

Result<KeyValue> ParseKeyValue(const nlohmann::json& j) {
  if (!j.is_object()) return Bad("a key-value is not an object");
  KeyValue kv;
  CK_ASSIGN_OR_RETURN(kv.key, JsonBytes(j, "key"));
  CK_ASSIGN_OR_RETURN(kv.value, JsonBytes(j, "value"));
  CK_ASSIGN_OR_RETURN(kv.create_revision, JsonInt64(j, "create_revision"));
  CK_ASSIGN_OR_RETURN(kv.mod_revision, JsonInt64(j, "mod_revision"));
  CK_ASSIGN_OR_RETURN(kv.version, JsonInt64(j, "version"));
  CK_ASSIGN_OR_RETURN(kv.lease, JsonInt64(j, "lease"));
  return kv;
}

Result<ResponseHeader> ParseHeader(const nlohmann::json& reply) {
  if (!reply.is_object()) return Bad("not an object");
  if (!reply.contains("header")) return Bad("no \"header\"");
  const auto& h = reply["header"];
  if (!h.is_object()) return Bad("\"header\" is not an object");
  ResponseHeader out;
  CK_ASSIGN_OR_RETURN(out.cluster_id, JsonUint64(h, "cluster_id"));
  CK_ASSIGN_OR_RETURN(out.member_id, JsonUint64(h, "member_id"));
  CK_ASSIGN_OR_RETURN(out.revision, JsonInt64(h, "revision"));
  CK_ASSIGN_OR_RETURN(out.raft_term, JsonUint64(h, "raft_term"));
  return out;
}

Compare Compare::CreateRevision(std::string key, int64_t rev, Result r) {
  return Compare{std::move(key), Target::kCreate, r, rev, {}};
}
Compare Compare::ModRevision(std::string key, int64_t rev, Result r) {
  return Compare{std::move(key), Target::kMod, r, rev, {}};
}
Compare Compare::Version(std::string key, int64_t version, Result r) {
  return Compare{std::move(key), Target::kVersion, r, version, {}};
}
Compare Compare::Lease(std::string key, int64_t lease, Result r) {
  return Compare{std::move(key), Target::kLease, r, lease, {}};
}
Compare Compare::Value(std::string key, std::string value, Result r) {
  return Compare{std::move(key), Target::kValue, r, 0, std::move(value)};
}

Op Op::Get(std::string key) {
  return Op{Kind::kRange, std::move(key), {}, 0};
}
Op Op::Put(std::string key, std::string value, int64_t lease) {
  return Op{Kind::kPut, std::move(key), std::move(value), lease};
}
Op Op::Delete(std::string key) {
  return Op{Kind::kDelete, std::move(key), {}, 0};
}

nlohmann::json EncodeTxn(const TxnRequest& txn) {
  nlohmann::json compare = nlohmann::json::array();
  for (const auto& c : txn.compare) {
    const TargetJson target = TargetOf(c.target);
    nlohmann::json j = {
        {"key", Base64Encode(c.key)}, {"target", target.name}, {"result", ResultName(c.result)}};
    if (c.target == Compare::Target::kValue)
      j["value"] = Base64Encode(c.value);
    else
      j[target.field] = std::to_string(c.number);
    compare.push_back(std::move(j));
  }
  nlohmann::json success = nlohmann::json::array();
  for (const auto& op : txn.success) success.push_back(EncodeOp(op));
  nlohmann::json failure = nlohmann::json::array();
  for (const auto& op : txn.failure) failure.push_back(EncodeOp(op));
  return {{"compare", compare}, {"success", success}, {"failure", failure}};
}

Result<TxnResponse> ParseTxnResponse(const nlohmann::json& reply) {
  TxnResponse out;
  CK_ASSIGN_OR_RETURN(out.header, ParseHeader(reply));
  if (reply.contains("succeeded")) {
    if (!reply["succeeded"].is_boolean()) return Bad("\"succeeded\" is not a boolean");
    out.succeeded = reply["succeeded"].get<bool>();
  }
  if (reply.contains("responses")) {
    const auto& rs = reply["responses"];
    if (!rs.is_array()) return Bad("\"responses\" is not an array");
    for (const auto& r : rs) {
      CK_ASSIGN_OR_RETURN(OpResponse op, ParseOpResponse(r));
      out.responses.push_back(std::move(op));
    }
  }
  return out;
}

Result<RangeResponse> ParseRangeResponse(const nlohmann::json& reply) {
  RangeResponse out;
  CK_ASSIGN_OR_RETURN(out.header, ParseHeader(reply));
  CK_ASSIGN_OR_RETURN(out.kvs, ParseKvs(reply));
  CK_ASSIGN_OR_RETURN(out.count, JsonInt64(reply, "count"));
  return out;
}

Result<LeaseGrantResponse> ParseLeaseGrant(const nlohmann::json& reply) {
  CK_RETURN_IF_ERROR(ParseHeader(reply).status());
  LeaseGrantResponse out;
  CK_ASSIGN_OR_RETURN(out.id, JsonInt64(reply, "ID"));
  CK_ASSIGN_OR_RETURN(out.ttl_seconds, JsonInt64(reply, "TTL"));
  // etcd puts a refusal in "error" (a string) with ID 0.
  if (reply.contains("error") && reply["error"].is_string() &&
      !reply["error"].get<std::string>().empty())
    return Status::Failure("etcd: lease grant refused: " + reply["error"].get<std::string>());
  if (out.id == 0 || out.ttl_seconds <= 0) return Bad("lease grant without an ID and TTL");
  return out;
}

Result<int64_t> ParseKeepAliveTtl(const nlohmann::json& reply) {
  if (!reply.is_object() || !reply.contains("result")) return Bad("no \"result\"");
  const auto& r = reply["result"];
  CK_RETURN_IF_ERROR(ParseHeader(r).status());
  CK_ASSIGN_OR_RETURN(int64_t ttl, JsonInt64(r, "TTL"));
  if (ttl < 0) return Bad("negative keepalive TTL");
  return ttl;
}

Result<LeaseTimeToLive> ParseTimeToLive(const nlohmann::json& reply) {
  CK_RETURN_IF_ERROR(ParseHeader(reply).status());
  LeaseTimeToLive out;
  CK_ASSIGN_OR_RETURN(int64_t ttl, JsonInt64(reply, "TTL"));
  CK_ASSIGN_OR_RETURN(out.granted_seconds, JsonInt64(reply, "grantedTTL"));
  // -1: the lease does not exist. 0 with a granted TTL: it expires this instant
  // (etcd rounds the remainder down), still present.
  out.exists = ttl >= 0;
  out.ttl_seconds = ttl < 0 ? 0 : ttl;
  if (reply.contains("keys")) {
    if (!reply["keys"].is_array()) return Bad("\"keys\" is not an array");
    for (const auto& k : reply["keys"]) {
      if (!k.is_string()) return Bad("a lease key is not a string");
      CK_ASSIGN_OR_RETURN(std::string key, Base64Decode(k.get_ref<const std::string&>()));
      out.keys.push_back(std::move(key));
    }
  }
  return out;
}

std::optional<EtcdErrorReply> ParseErrorReply(const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("error")) return std::nullopt;
  const auto& e = body["error"];
  EtcdErrorReply out;
  auto code_of = [](const nlohmann::json& c) {
    int n = c.is_number_integer() ? c.get<int>() : static_cast<int>(GrpcCode::kUnknown);
    if (n < 0 || n > 16) n = static_cast<int>(GrpcCode::kUnknown);
    return static_cast<GrpcCode>(n);
  };
  if (e.is_string()) {
    // Unary calls: {"error": TEXT, "message": TEXT, "code": N}. A LeaseGrant
    // reply may carry an empty "error" string alongside its header.
    if (e.get_ref<const std::string&>().empty() && body.contains("header")) return std::nullopt;
    out.message = body.contains("message") && body["message"].is_string()
                      ? body["message"].get<std::string>()
                      : e.get<std::string>();
    out.code = body.contains("code") ? code_of(body["code"]) : GrpcCode::kUnknown;
    return out;
  }
  if (e.is_object()) {
    // Streaming calls: {"error": {"grpc_code": N, "http_code": N, "message": TEXT}}.
    if (e.contains("message") && e["message"].is_string()) out.message = e["message"];
    out.code = e.contains("grpc_code") ? code_of(e["grpc_code"]) : GrpcCode::kUnknown;
    return out;
  }
  out.message = "malformed error reply";
  return out;
}

bool OutcomeUnknown(GrpcCode code) {
  switch (code) {
    // etcd answered and did not apply the request.
    case GrpcCode::kInvalidArgument:
    case GrpcCode::kNotFound:
    case GrpcCode::kAlreadyExists:
    case GrpcCode::kPermissionDenied:
    case GrpcCode::kResourceExhausted:  // too many requests: refused before the proposal
    case GrpcCode::kFailedPrecondition:
    case GrpcCode::kOutOfRange:
    case GrpcCode::kUnimplemented:
    case GrpcCode::kUnauthenticated:
      return false;
    // Unavailable (no leader, request timed out, leader changed),
    // DeadlineExceeded, Canceled, Unknown, Internal, Aborted, DataLoss: the
    // proposal may or may not commit.
    default:
      return true;
  }
}

}  // namespace cloudkeep::coord
