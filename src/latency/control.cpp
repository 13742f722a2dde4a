#include "latency/control.h"

#include <openssl/rand.h>

#include <ctime>

#include "latency/wire.h"

namespace cloudkeep::latency {

namespace {
std::string Nonce() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}
}  // namespace

Result<Json> ReadControl(int fd, const std::string& token, int type) {
  std::vector<uint8_t> frame(wire::kControlHeader);
  CK_RETURN_IF_ERROR(ReadFull(fd, frame.data(), frame.size()));
  CK_ASSIGN_OR_RETURN(size_t n, wire::ControlPayloadLength(frame));
  frame.resize(wire::kControlHeader + n + wire::kMac);
  CK_RETURN_IF_ERROR(ReadFull(fd, frame.data() + wire::kControlHeader, n + wire::kMac));
  return wire::DecodeControl(frame, static_cast<wire::Type>(type), token);
}

Status WriteControl(int fd, int type, const Json& payload, const std::string& token) {
  std::string frame = wire::EncodeControl(static_cast<wire::Type>(type), payload, token);
  return WriteFull(fd, frame.data(), frame.size());
}

Result<Json> ControlCall(const SockAddr& addr, Json request, const std::string& token,
                         std::chrono::microseconds timeout, UniqueFd* fd_out) {
  std::string nonce = Nonce();
  request["nonce"] = nonce;
  request["time"] = static_cast<int64_t>(std::time(nullptr));
  std::string where = "agent " + addr.ToString();
  auto fd = ConnectTcp(addr, std::min<std::chrono::microseconds>(timeout, std::chrono::seconds(5)));
  if (!fd.ok()) return fd.status().Annotate(where);
  SetSocketTimeouts(fd->get(), timeout);
  CK_RETURN_IF_ERROR(WriteControl(fd->get(), static_cast<int>(wire::Type::kControl), request, token)
                         .Annotate(where));
  auto reply = ReadControl(fd->get(), token, static_cast<int>(wire::Type::kControlReply));
  if (!reply.ok()) return reply.status().Annotate(where);
  if (reply->value("nonce", "") != nonce)
    return Status::Failure(where + ": answer does not echo the request's nonce");
  if (reply->contains("error"))
    return Status::Failure(where + " refused: " + reply->value("error", "?"));
  if (fd_out) *fd_out = std::move(*fd);
  return std::move(*reply);
}

Status ReplayGuard::Check(const Json& request, int64_t now) {
  if (!request.contains("nonce") || !request["nonce"].is_string() ||
      request["nonce"].get<std::string>().size() < 16)
    return Status::Failure("request without a nonce");
  if (!request.contains("time") || !request["time"].is_number_integer())
    return Status::Failure("request without a time");
  int64_t t = request["time"].get<int64_t>();
  if (t < now - kMaxClockSkewSeconds || t > now + kMaxClockSkewSeconds)
    return Status::Failure("request time is more than 5 minutes from this agent's clock");
  std::string nonce = request["nonce"].get<std::string>();
  std::lock_guard<std::mutex> lock(mu_);
  while (!order_.empty() && order_.front().first < now - 2 * kMaxClockSkewSeconds) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  if (seen_.count(nonce)) return Status::Failure("replayed request");
  if (order_.size() > 100000) return Status::Failure("too many requests");
  seen_.insert(nonce);
  order_.emplace_back(now, nonce);
  return Status::Ok();
}

}  // namespace cloudkeep::latency
