#include "nbd/protocol.h"

#include <cerrno>

namespace cloudkeep::nbd::proto {

void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}
void Put32(std::string* out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v));
}
void Put64(std::string* out, uint64_t v) {
  Put32(out, static_cast<uint32_t>(v >> 32));
  Put32(out, static_cast<uint32_t>(v));
}
bool DecodeRequest(const uint8_t* b, Request* out) {
  if (Get32(b) != kRequestMagic) return false;
  out->flags = Get16(b + 4);
  out->type = Get16(b + 6);
  out->cookie = Get64(b + 8);
  out->offset = Get64(b + 16);
  out->length = Get32(b + 24);
  return true;
}

std::string EncodeRequest(const Request& r) {
  std::string out;
  Put32(&out, kRequestMagic);
  Put16(&out, r.flags);
  Put16(&out, r.type);
  Put64(&out, r.cookie);
  Put64(&out, r.offset);
  Put32(&out, r.length);
  return out;
}

namespace {

// A cursor over untrusted bytes: every read checks what is left.
class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool U16(uint16_t* v) {
    if (d_.size() < 2) return false;
    *v = Get16(reinterpret_cast<const uint8_t*>(d_.data()));
    d_.remove_prefix(2);
    return true;
  }
  bool U32(uint32_t* v) {
    if (d_.size() < 4) return false;
    *v = Get32(reinterpret_cast<const uint8_t*>(d_.data()));
    d_.remove_prefix(4);
    return true;
  }
  bool Bytes(size_t n, std::string* out) {
    if (d_.size() < n) return false;
    out->assign(d_.data(), n);
    d_.remove_prefix(n);
    return true;
  }
  bool String(std::string* out) {
    uint32_t len = 0;
    return U32(&len) && len <= kMaxString && Bytes(len, out);
  }
  bool empty() const { return d_.empty(); }
  size_t left() const { return d_.size(); }

 private:
  std::string_view d_;
};

}  // namespace

std::optional<InfoRequest> ParseInfoRequest(std::string_view data) {
  Reader r(data);
  InfoRequest out;
  uint16_t n = 0;
  if (!r.String(&out.name) || !r.U16(&n)) return std::nullopt;
  if (r.left() != size_t{n} * 2) return std::nullopt;  // "length … MUST match"
  for (uint16_t i = 0; i < n; ++i) {
    uint16_t info = 0;
    r.U16(&info);
    out.infos.push_back(info);
  }
  return out;
}

std::optional<MetaContextRequest> ParseMetaContextRequest(std::string_view data) {
  Reader r(data);
  MetaContextRequest out;
  uint32_t n = 0;
  if (!r.String(&out.export_name) || !r.U32(&n)) return std::nullopt;
  // Each query takes at least its 4-byte length: bounds n before any allocation.
  if (n > r.left() / 4) return std::nullopt;
  for (uint32_t i = 0; i < n; ++i) {
    std::string q;
    if (!r.String(&q)) return std::nullopt;
    out.queries.push_back(std::move(q));
  }
  if (!r.empty()) return std::nullopt;
  return out;
}

std::string OptionReply(uint32_t option, uint32_t type, std::string_view data) {
  std::string out;
  Put64(&out, kOptReplyMagic);
  Put32(&out, option);
  Put32(&out, type);
  Put32(&out, static_cast<uint32_t>(data.size()));
  out.append(data);
  return out;
}

std::string SimpleReply(uint32_t error, uint64_t cookie) {
  std::string out;
  Put32(&out, kSimpleReplyMagic);
  Put32(&out, error);
  Put64(&out, cookie);
  return out;
}

std::string StructuredHeader(uint16_t flags, uint16_t type, uint64_t cookie,
                             uint32_t payload_length) {
  std::string out;
  Put32(&out, kStructuredReplyMagic);
  Put16(&out, flags);
  Put16(&out, type);
  Put64(&out, cookie);
  Put32(&out, payload_length);
  return out;
}

std::string StructuredError(uint64_t cookie, uint32_t error, std::string_view message) {
  if (message.size() > kMaxString) message = message.substr(0, kMaxString);
  std::string payload;
  Put32(&payload, error);
  Put16(&payload, static_cast<uint16_t>(message.size()));
  payload.append(message);
  return StructuredHeader(kReplyFlagDone, kReplyTypeError, cookie,
                          static_cast<uint32_t>(payload.size())) +
         payload;
}

uint32_t ErrnoToNbd(int err) {
  switch (err) {
    case EPERM:
    case EROFS:
      return kEperm;
    case ENOMEM:
      return kEnomem;
    case EINVAL:
      return kEinval;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return kEnospc;
    case EOVERFLOW:
      return kEoverflow;
    case ENOTSUP:
      return kEnotsup;
    case ESHUTDOWN:
      return kEshutdown;
    default:
      return kEio;
  }
}

const char* CommandName(uint16_t type) {
  switch (type) {
    case kCmdRead:
      return "READ";
    case kCmdWrite:
      return "WRITE";
    case kCmdDisc:
      return "DISC";
    case kCmdFlush:
      return "FLUSH";
    case kCmdTrim:
      return "TRIM";
    case kCmdCache:
      return "CACHE";
    case kCmdWriteZeroes:
      return "WRITE_ZEROES";
    case kCmdBlockStatus:
      return "BLOCK_STATUS";
    default:
      return "unknown";
  }
}

const char* OptionName(uint32_t option) {
  switch (option) {
    case kOptExportName:
      return "EXPORT_NAME";
    case kOptAbort:
      return "ABORT";
    case kOptList:
      return "LIST";
    case kOptStartTls:
      return "STARTTLS";
    case kOptInfo:
      return "INFO";
    case kOptGo:
      return "GO";
    case kOptStructuredReply:
      return "STRUCTURED_REPLY";
    case kOptListMetaContext:
      return "LIST_META_CONTEXT";
    case kOptSetMetaContext:
      return "SET_META_CONTEXT";
    default:
      return "unknown";
  }
}

}  // namespace cloudkeep::nbd::proto
