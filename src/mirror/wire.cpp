#include "mirror/wire.h"

#include <cstring>

#include "core/byte_order.h"

namespace cloudkeep::mirror::wire {

using namespace be;  // wire integers are big-endian

// 0 magic(4) 4 version(1) 5 type(1) 6 flags(2) 8 payload_bytes(4) 12 length(4)
// 16 seq(8) 24 offset(8) 32 token(8)
void EncodeHeader(const Header& h, uint8_t out[kHeaderBytes]) {
  std::memcpy(out, kMagic, 4);
  out[4] = kVersion;
  out[5] = static_cast<uint8_t>(h.type);
  Put16(out + 6, h.flags);
  Put32(out + 8, h.payload_bytes);
  Put32(out + 12, h.length);
  Put64(out + 16, h.seq);
  Put64(out + 24, h.offset);
  Put64(out + 32, h.token);
}

Result<Header> DecodeHeader(const uint8_t in[kHeaderBytes]) {
  if (std::memcmp(in, kMagic, 4) != 0) return Status::Failure("bad frame magic");
  if (in[4] != kVersion)
    return Status::Failure("unsupported protocol version " + std::to_string(in[4]));
  if (in[5] < 1 || in[5] > static_cast<uint8_t>(Type::kZero))
    return Status::Failure("unknown frame type " + std::to_string(in[5]));
  Header h;
  h.type = static_cast<Type>(in[5]);
  h.flags = Get16(in + 6);
  h.payload_bytes = Get32(in + 8);
  h.length = Get32(in + 12);
  h.seq = Get64(in + 16);
  h.offset = Get64(in + 24);
  h.token = Get64(in + 32);
  if (h.payload_bytes > kMaxPayload)
    return Status::Failure("frame payload too large: " + std::to_string(h.payload_bytes));
  if ((h.type == Type::kWrite || h.type == Type::kResyncData) && h.payload_bytes != h.length)
    return Status::Failure("write frame length " + std::to_string(h.length) + " != payload " +
                           std::to_string(h.payload_bytes));
  if (h.type == Type::kZero && h.payload_bytes != 0)
    return Status::Failure("zero frame with a payload of " + std::to_string(h.payload_bytes));
  return h;
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kHello:
      return "HELLO";
    case Type::kWrite:
      return "WRITE";
    case Type::kAck:
      return "ACK";
    case Type::kFlush:
      return "FLUSH";
    case Type::kBitmap:
      return "BITMAP";
    case Type::kResyncData:
      return "RESYNC_DATA";
    case Type::kResyncAck:
      return "RESYNC_ACK";
    case Type::kSyncDone:
      return "SYNC_DONE";
    case Type::kVerifyReq:
      return "VERIFY_REQ";
    case Type::kVerifyReply:
      return "VERIFY_REPLY";
    case Type::kPing:
      return "PING";
    case Type::kPong:
      return "PONG";
    case Type::kState:
      return "STATE";
    case Type::kRefuse:
      return "REFUSE";
    case Type::kSyncStart:
      return "SYNC_START";
    case Type::kZero:
      return "ZERO";
  }
  return "?";
}

}  // namespace cloudkeep::mirror::wire
