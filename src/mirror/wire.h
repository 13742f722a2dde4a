// The replication protocol's frames (docs/mirror-format.md, "Replication
// protocol"). Every message is a 40-byte header and a payload; integers are
// big-endian. The link underneath (link.h) is TLS 1.3, so frames carry no
// checksum of their own.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/output.h"
#include "core/status.h"

namespace cloudkeep::mirror::wire {

constexpr uint8_t kMagic[4] = {'C', 'K', 'M', 'R'};
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 40;
// Largest payload: one write or resync block of 32 MiB (the NBD maximum) plus slack.
constexpr uint32_t kMaxPayload = 33 * 1024 * 1024;

enum class Type : uint8_t {
  kHello = 1,         // JSON: who I am and what my data is
  kWrite = 2,         // a client write: seq, offset, data; flags kFua
  kAck = 3,           // seq of an acknowledged write/flush; flags kError
  kFlush = 4,         // barrier: ack after every earlier write is durable
  kBitmap = 5,        // the sender's dirty bitmap (on-disk form)
  kResyncData = 6,    // source -> target: offset, data
  kResyncAck = 7,     // target -> source: offset, length applied
  kSyncDone = 8,      // source -> target: JSON {"current": id}; acked with kAck seq
  kVerifyReq = 9,     // seq, offset, length; payload: u32 block size
  kVerifyReply = 10,  // seq, offset, length; payload: 32-byte SHA-256 per block
  kPing = 11,
  kPong = 12,
  kState = 13,      // JSON: role, disk_state (sent on every change)
  kRefuse = 14,     // JSON: reason; the connection ends
  kSyncStart = 15,  // source -> target: resync begins (target marks itself Inconsistent)
  kZero = 16,       // a client TRIM or WRITE_ZEROES: seq, offset, length; flags kFua, kMayTrim
};

enum Flags : uint16_t {
  kFlagFua = 1,
  kFlagError = 2,
  kFlagMayTrim = 4,  // kZero: the range may be deallocated (reads as zeroes either way)
};

struct Header {
  Type type = Type::kPing;
  uint16_t flags = 0;
  uint32_t payload_bytes = 0;
  uint32_t length = 0;  // bytes of the device the message is about
  uint64_t seq = 0;
  uint64_t offset = 0;
  uint64_t token = 0;  // fencing token (issue 13); 0 without fencing
};

void EncodeHeader(const Header& h, uint8_t out[kHeaderBytes]);
// kFailure naming the problem for a bad magic, version, type or size.
Result<Header> DecodeHeader(const uint8_t in[kHeaderBytes]);
const char* TypeName(Type t);

}  // namespace cloudkeep::mirror::wire
