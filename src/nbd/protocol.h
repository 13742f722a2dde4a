// The NBD wire protocol: constants and the pure parsers/encoders of the
// server core, named and numbered as in NetworkBlockDevice/nbd doc/proto.md
// (section names quoted in comments). Only the fixed newstyle handshake and
// the transmission phase with simple and structured replies are spoken;
// extended headers (64-bit lengths) are not offered.
//
// The parsers take untrusted bytes and check every length before use; they
// have libFuzzer targets (fuzz/fuzz_nbd_*).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/byte_order.h"
#include "core/status.h"

namespace cloudkeep::nbd::proto {

// "Newstyle negotiation"
constexpr uint64_t kNbdMagic = 0x4e42444d41474943ull;  // "NBDMAGIC"
constexpr uint64_t kIHaveOpt = 0x49484156454F5054ull;  // "IHAVEOPT"
constexpr uint64_t kOptReplyMagic = 0x3e889045565a9ull;

// "Handshake flags" and "Client flags"
constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
constexpr uint16_t kFlagNoZeroes = 1 << 1;
constexpr uint32_t kClientFixedNewstyle = 1 << 0;
constexpr uint32_t kClientNoZeroes = 1 << 1;

// "Transmission flags"
constexpr uint16_t kHasFlags = 1 << 0;
constexpr uint16_t kReadOnly = 1 << 1;
constexpr uint16_t kSendFlush = 1 << 2;
constexpr uint16_t kSendFua = 1 << 3;
constexpr uint16_t kRotational = 1 << 4;
constexpr uint16_t kSendTrim = 1 << 5;
constexpr uint16_t kSendWriteZeroes = 1 << 6;
constexpr uint16_t kSendDf = 1 << 7;
constexpr uint16_t kCanMultiConn = 1 << 8;
constexpr uint16_t kSendCache = 1 << 10;
constexpr uint16_t kSendFastZero = 1 << 11;

// "Option types"
constexpr uint32_t kOptExportName = 1;
constexpr uint32_t kOptAbort = 2;
constexpr uint32_t kOptList = 3;
constexpr uint32_t kOptStartTls = 5;
constexpr uint32_t kOptInfo = 6;
constexpr uint32_t kOptGo = 7;
constexpr uint32_t kOptStructuredReply = 8;
constexpr uint32_t kOptListMetaContext = 9;
constexpr uint32_t kOptSetMetaContext = 10;

// "Option reply types"
constexpr uint32_t kRepAck = 1;
constexpr uint32_t kRepServer = 2;
constexpr uint32_t kRepInfo = 3;
constexpr uint32_t kRepMetaContext = 4;
constexpr uint32_t kRepErrBit = 1u << 31;
constexpr uint32_t kRepErrUnsup = kRepErrBit | 1;
constexpr uint32_t kRepErrPolicy = kRepErrBit | 2;
constexpr uint32_t kRepErrInvalid = kRepErrBit | 3;
constexpr uint32_t kRepErrPlatform = kRepErrBit | 4;
constexpr uint32_t kRepErrTlsReqd = kRepErrBit | 5;
constexpr uint32_t kRepErrUnknown = kRepErrBit | 6;
constexpr uint32_t kRepErrShutdown = kRepErrBit | 7;
constexpr uint32_t kRepErrTooBig = kRepErrBit | 9;

// NBD_INFO_* ("NBD_OPT_INFO and NBD_OPT_GO")
constexpr uint16_t kInfoExport = 0;
constexpr uint16_t kInfoName = 1;
constexpr uint16_t kInfoDescription = 2;
constexpr uint16_t kInfoBlockSize = 3;

// "Request message", "Simple reply message", "Structured reply chunk message"
constexpr uint32_t kRequestMagic = 0x25609513;
constexpr uint32_t kSimpleReplyMagic = 0x67446698;
constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;
constexpr size_t kRequestSize = 28;

// "Request types"
constexpr uint16_t kCmdRead = 0;
constexpr uint16_t kCmdWrite = 1;
constexpr uint16_t kCmdDisc = 2;
constexpr uint16_t kCmdFlush = 3;
constexpr uint16_t kCmdTrim = 4;
constexpr uint16_t kCmdCache = 5;
constexpr uint16_t kCmdWriteZeroes = 6;
constexpr uint16_t kCmdBlockStatus = 7;

// "Command flags"
constexpr uint16_t kCmdFlagFua = 1 << 0;
constexpr uint16_t kCmdFlagNoHole = 1 << 1;
constexpr uint16_t kCmdFlagDf = 1 << 2;
constexpr uint16_t kCmdFlagReqOne = 1 << 3;
constexpr uint16_t kCmdFlagFastZero = 1 << 4;

// "Structured reply flags" and "Structured reply types"
constexpr uint16_t kReplyFlagDone = 1 << 0;
constexpr uint16_t kReplyTypeNone = 0;
constexpr uint16_t kReplyTypeOffsetData = 1;
constexpr uint16_t kReplyTypeOffsetHole = 2;
constexpr uint16_t kReplyTypeBlockStatus = 5;
constexpr uint16_t kReplyTypeError = (1 << 15) + 1;

// "Error values"
constexpr uint32_t kEperm = 1;
constexpr uint32_t kEio = 5;
constexpr uint32_t kEnomem = 12;
constexpr uint32_t kEinval = 22;
constexpr uint32_t kEnospc = 28;
constexpr uint32_t kEoverflow = 75;
constexpr uint32_t kEnotsup = 95;
constexpr uint32_t kEshutdown = 108;

// The only metadata context served ("base:allocation metadata context").
constexpr std::string_view kBaseAllocation = "base:allocation";
constexpr uint32_t kBaseAllocationId = 1;

// Strings in the handshake are at most 4096 bytes ("Conventions").
constexpr size_t kMaxString = 4096;

// Big-endian field access.
void Put16(std::string* out, uint16_t v);
void Put32(std::string* out, uint32_t v);
void Put64(std::string* out, uint64_t v);
using be::Get16;
using be::Get32;
using be::Get64;

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};
// Decodes the 28-byte request header; false on a wrong magic.
bool DecodeRequest(const uint8_t* bytes, Request* out);
std::string EncodeRequest(const Request& r);

// NBD_OPT_INFO / NBD_OPT_GO data: 32-bit name length, name, 16-bit count of
// information requests, each 16 bits.
struct InfoRequest {
  std::string name;
  std::vector<uint16_t> infos;
};
std::optional<InfoRequest> ParseInfoRequest(std::string_view data);

// NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT data: 32-bit export
// name length, name, 32-bit number of queries, each a 32-bit length and string.
struct MetaContextRequest {
  std::string export_name;
  std::vector<std::string> queries;
};
std::optional<MetaContextRequest> ParseMetaContextRequest(std::string_view data);

// An option reply header and its data ("Option reply types").
std::string OptionReply(uint32_t option, uint32_t type, std::string_view data);
// A simple reply header ("Simple reply message"); read data follows it.
std::string SimpleReply(uint32_t error, uint64_t cookie);
// A structured reply chunk header; `payload_length` bytes follow.
std::string StructuredHeader(uint16_t flags, uint16_t type, uint64_t cookie,
                             uint32_t payload_length);
// A complete NBD_REPLY_TYPE_ERROR chunk with a human-readable message.
std::string StructuredError(uint64_t cookie, uint32_t error, std::string_view message);

// NBD error for an errno (EIO for anything without its own NBD value).
uint32_t ErrnoToNbd(int err);
const char* CommandName(uint16_t type);
const char* OptionName(uint32_t option);

}  // namespace cloudkeep::nbd::proto
