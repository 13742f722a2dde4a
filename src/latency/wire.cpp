#include "latency/wire.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>

#include "core/byte_order.h"

namespace cloudkeep::latency::wire {

namespace {

using namespace be;  // wire integers are big-endian

bool IsProbeFamily(uint8_t t) {
  return t >= 1 && t <= 4;
}

void Mac(std::string_view token, std::span<const uint8_t> data, uint8_t out[kMac]) {
  unsigned int len = kMac;
  // An empty key is legal for HMAC (RFC 2104 section 3 pads it with zeros);
  // a responder without a token uses it for the unprivileged operations.
  static const uint8_t kEmpty = 0;
  const void* key = token.empty() ? static_cast<const void*>(&kEmpty) : token.data();
  HMAC(EVP_sha256(), key, static_cast<int>(token.size()), data.data(), data.size(), out, &len);
}

}  // namespace

std::optional<Type> PeekType(std::span<const uint8_t> in) {
  if (in.size() < 6 || Get32(in.data()) != kMagic || in[4] != kVersion) return std::nullopt;
  if (in[5] < 1 || in[5] > 6) return std::nullopt;
  return static_cast<Type>(in[5]);
}

void EncodeProbe(const Probe& p, std::span<uint8_t> out) {
  std::memset(out.data(), 0, p.length);
  Put32(out.data(), kMagic);
  out[4] = kVersion;
  out[5] = static_cast<uint8_t>(p.type);
  Put16(out.data() + 6, p.length);
  Put32(out.data() + 8, p.seq);
  Put32(out.data() + 12, p.session);
  Put64(out.data() + 16, p.client_ns);
  Put64(out.data() + 24, p.server_ns);
}

std::optional<Probe> DecodeProbe(std::span<const uint8_t> in, bool stream) {
  if (in.size() < kProbeHeader) return std::nullopt;
  auto t = PeekType(in);
  if (!t || !IsProbeFamily(static_cast<uint8_t>(*t))) return std::nullopt;
  Probe p;
  p.type = *t;
  p.length = Get16(in.data() + 6);
  if (p.length < kProbeHeader || p.length > kMaxProbe) return std::nullopt;
  if (!stream && p.length != in.size()) return std::nullopt;
  p.seq = Get32(in.data() + 8);
  p.session = Get32(in.data() + 12);
  p.client_ns = Get64(in.data() + 16);
  p.server_ns = Get64(in.data() + 24);
  return p;
}

bool MakeReply(std::span<uint8_t> msg, uint64_t server_ns, std::string_view name,
               std::string_view zone) {
  auto p = DecodeProbe(msg);
  if (!p || (p->type != Type::kProbe && p->type != Type::kHello)) return false;
  // Only the type and the server time change, so the reply is exactly as
  // long as the request: a spoofed source gains nothing by asking.
  msg[5] = static_cast<uint8_t>(p->type == Type::kProbe ? Type::kReply : Type::kHelloReply);
  Put64(msg.data() + 24, server_ns);
  if (p->type == Type::kHello) {
    uint8_t* q = msg.data() + kProbeHeader;
    size_t room = msg.size() - kProbeHeader;
    std::memset(q, 0, room);
    for (std::string_view s : {name, zone}) {
      if (room == 0) break;
      size_t n = std::min({s.size(), room - 1, size_t{255}});
      *q++ = static_cast<uint8_t>(n);
      std::memcpy(q, s.data(), n);
      q += n;
      room -= n + 1;
    }
  }
  return true;
}

std::optional<Identity> DecodeHelloReply(std::span<const uint8_t> msg) {
  auto p = DecodeProbe(msg);
  if (!p || p->type != Type::kHelloReply) return std::nullopt;
  Identity id;
  size_t off = kProbeHeader;
  for (std::string* s : {&id.name, &id.zone}) {
    if (off >= msg.size()) break;
    size_t n = msg[off++];
    if (n > msg.size() - off) return std::nullopt;
    s->assign(reinterpret_cast<const char*>(msg.data() + off), n);
    off += n;
  }
  return id;
}

std::string IdentityTextProblem(std::string_view value) {
  if (value.empty()) return "is empty";
  // EscapeControl changes exactly the bytes that are controls or not UTF-8.
  if (EscapeControl(value) != value) return "holds a control character or bytes that are not UTF-8";
  return "";
}

Status ValidateIdentity(std::string_view name, std::string_view zone, std::string_view name_flag,
                        std::string_view zone_flag) {
  for (auto [flag, value] : {std::pair{name_flag, name}, {zone_flag, zone}}) {
    std::string problem = IdentityTextProblem(value);
    if (!problem.empty())
      return Status::Usage(fmt::format("{} '{}' {}: a latency name or zone is printable UTF-8 text",
                                       flag, EscapeControl(value), problem));
  }
  if (name.size() + zone.size() > kMaxIdentity)
    return Status::Usage(
        fmt::format("{} '{}' and {} '{}' are {} bytes together: the hello reply holds at most {} "
                    "(docs/latency-wire-format.md)",
                    name_flag, name, zone_flag, zone, name.size() + zone.size(), kMaxIdentity));
  return Status::Ok();
}

std::string EncodeControl(Type type, const Json& payload, std::string_view token) {
  // Replies quote what targets announced: invalid UTF-8 there becomes U+FFFD
  // instead of a type_error that would end the reply.
  std::string body = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string frame(kControlHeader + body.size() + kMac, '\0');
  auto* p = reinterpret_cast<uint8_t*>(frame.data());
  Put32(p, kMagic);
  p[4] = kVersion;
  p[5] = static_cast<uint8_t>(type);
  Put32(p + 8, static_cast<uint32_t>(body.size()));
  std::memcpy(p + kControlHeader, body.data(), body.size());
  Mac(token, {p, kControlHeader + body.size()}, p + kControlHeader + body.size());
  return frame;
}

Result<size_t> ControlPayloadLength(std::span<const uint8_t> header) {
  if (header.size() < kControlHeader) return Status::Failure("control frame: short header");
  auto t = PeekType(header);
  if (!t || (*t != Type::kControl && *t != Type::kControlReply))
    return Status::Failure("not a control frame");
  if (header[6] != 0 || header[7] != 0) return Status::Failure("control frame: reserved bytes set");
  size_t n = Get32(header.data() + 8);
  if (n > kMaxControlPayload) return Status::Failure("control frame: payload too large");
  return n;
}

Result<Json> DecodeControl(std::span<const uint8_t> frame, Type expected, std::string_view token) {
  CK_ASSIGN_OR_RETURN(size_t n, ControlPayloadLength(frame));
  if (frame.size() != kControlHeader + n + kMac)
    return Status::Failure("control frame: wrong length");
  if (static_cast<Type>(frame[5]) != expected)
    return Status::Failure("control frame: unexpected type");
  uint8_t mac[kMac];
  Mac(token, frame.first(kControlHeader + n), mac);
  if (CRYPTO_memcmp(mac, frame.data() + kControlHeader + n, kMac) != 0)
    return Status::Failure("control frame: authentication failed (wrong mesh token?)");
  Json j = Json::parse(frame.begin() + kControlHeader,
                       frame.begin() + static_cast<long>(kControlHeader + n), nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::Failure("control frame: payload is not a JSON object");
  return j;
}

}  // namespace cloudkeep::latency::wire
