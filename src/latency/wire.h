// The latency wire format: probes and replies (UDP datagrams or TCP frames)
// and authenticated control frames (TCP), all on one port. The byte layout
// is written down in docs/latency-wire-format.md; this header is its code.
//
// Every message opens with the magic "CKLT" and a version byte, so a
// responder can drop anything else after looking at five bytes. Parsing
// never trusts a length field beyond the bytes actually received, and a
// reply is always built in place from the request, so it can never be
// larger than what was received (no amplification).
//
// Control frames carry a JSON payload and an HMAC-SHA256 (RFC 2104) over
// header and payload, keyed with the shared mesh token; the payload holds a
// nonce and a time so a captured frame cannot be replayed after five minutes.
//
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/output.h"
#include "core/status.h"

namespace cloudkeep::latency::wire {

inline constexpr uint32_t kMagic = 0x434B4C54;  // "CKLT"
inline constexpr uint8_t kVersion = 1;

enum class Type : uint8_t {
  kProbe = 1,       // client -> responder; answered by kReply of equal size
  kReply = 2,       // responder -> client; never answered
  kHello = 3,       // client -> responder; answered by kHelloReply of equal size
  kHelloReply = 4,  // carries the responder's name and zone, truncated to fit
  kControl = 5,     // TCP only: authenticated JSON request
  kControlReply = 6,
};

// A probe/reply: 32 bytes of header, then padding up to `length`.
inline constexpr size_t kProbeHeader = 32;
inline constexpr size_t kMaxProbe = 9216;  // a jumbo frame; larger probes are not answered

struct Probe {
  Type type = Type::kProbe;
  uint16_t length = kProbeHeader;  // whole message, padding included
  uint32_t seq = 0;
  uint32_t session = 0;    // chosen by the prober so stale replies of an earlier run are ignored
  uint64_t client_ns = 0;  // the prober's clock; the responder echoes it untouched
  uint64_t server_ns = 0;  // the responder's CLOCK_REALTIME when it answered; 0 in a request
};

// Writes a probe into `out` (out.size() >= p.length); the padding is zero.
void EncodeProbe(const Probe& p, std::span<uint8_t> out);
// Parses a probe-family message (kProbe/kReply/kHello/kHelloReply). The
// length field must equal the bytes given for a datagram; for a TCP stream
// pass the 32-byte header alone and `stream` = true.
std::optional<Probe> DecodeProbe(std::span<const uint8_t> in, bool stream = false);

// The responder's answer to a well-formed kProbe or kHello, built in place in
// `msg` (which holds exactly the request). Returns false when the message
// must not be answered: anything malformed, a reply, a control frame, a
// probe above kMaxProbe. A hello reply carries name and zone as two
// length-prefixed strings in the padding, truncated to what fits.
bool MakeReply(std::span<uint8_t> msg, uint64_t server_ns, std::string_view name,
               std::string_view zone);

// Name and zone from a kHelloReply ("" when they did not fit).
struct Identity {
  std::string name, zone;
};

// The hello a prober sends (160 bytes) leaves 128 bytes of padding for the
// reply's two length-prefixed strings: name and zone together fit in 126.
inline constexpr size_t kHelloSize = 160;
inline constexpr size_t kMaxIdentity = kHelloSize - kProbeHeader - 2;

// What a responder may announce (docs/latency-wire-format.md, HELLO_REPLY):
// name and zone each non-empty UTF-8 text with no control characters (C0,
// DEL, C1, bidirectional overrides), together at most kMaxIdentity bytes.
// A usage error naming the flag (`name_flag`, `zone_flag`) and the value
// otherwise. Probers still print what they receive escaped: a responder
// that is not cloudkeep can send anything.
Status ValidateIdentity(std::string_view name, std::string_view zone,
                        std::string_view name_flag = "--name",
                        std::string_view zone_flag = "--zone");
// The text rule alone, for one value: "" when fine, else why not.
std::string IdentityTextProblem(std::string_view value);
std::optional<Identity> DecodeHelloReply(std::span<const uint8_t> msg);

// Control frames: a 12-byte header (magic, version, type, 2 zero bytes,
// payload length), the JSON payload, then 32 bytes of HMAC-SHA256.
inline constexpr size_t kControlHeader = 12;
inline constexpr size_t kMac = 32;
inline constexpr size_t kMaxControlPayload = 4 << 20;

std::string EncodeControl(Type type, const Json& payload, std::string_view token);
// The payload length announced by a control header, or an error if the
// header is not a control header or announces too much.
Result<size_t> ControlPayloadLength(std::span<const uint8_t> header);
// Verifies the MAC (constant time) and parses the JSON. `frame` is header + payload + MAC.
Result<Json> DecodeControl(std::span<const uint8_t> frame, Type expected, std::string_view token);

// The type of a message from its first six bytes, if it starts with our magic and version.
std::optional<Type> PeekType(std::span<const uint8_t> in);

}  // namespace cloudkeep::latency::wire
