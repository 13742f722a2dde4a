// Runs the NBD server core on one end of a socketpair while the fuzz input
// is written to the other as a client would, and the replies are drained.
// A crash, hang, leak or out-of-bounds access in the server is a finding.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "nbd/server.h"

namespace cloudkeep::nbd::fuzz {

// A 1 MiB writable disk in memory with every capability.
class MemDisk : public Backend {
 public:
  MemDisk() : bytes_(1 << 20, '\0') {}
  uint64_t Size() const override { return bytes_.size(); }
  BackendCaps Caps() const override {
    BackendCaps c;
    c.writable = c.flush = c.fua = c.trim = c.zero = c.fast_zero = c.extents = c.cache = true;
    c.multi_conn = true;
    return c;
  }
  Status Pread(void* buf, uint64_t n, uint64_t o) override {
    std::memcpy(buf, bytes_.data() + o, n);
    return Status::Ok();
  }
  Status Pwrite(const void* buf, uint64_t n, uint64_t o, bool) override {
    std::memcpy(bytes_.data() + o, buf, n);
    return Status::Ok();
  }
  Status Trim(uint64_t n, uint64_t o, bool) override { return Zero(n, o, true, false, false); }
  Status Zero(uint64_t n, uint64_t o, bool, bool, bool) override {
    std::memset(bytes_.data() + o, 0, n);
    return Status::Ok();
  }
  Status Extents(uint64_t n, uint64_t, std::vector<Extent>* out) override {
    out->push_back(Extent{n / 2 + 1, 0});
    out->push_back(Extent{n, Extent::kHole | Extent::kZero});
    return Status::Ok();
  }

 private:
  std::string bytes_;
};

inline void Serve(const std::string& client_bytes) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
  static std::vector<Export> exports = {Export{"", "fuzz", std::make_shared<MemDisk>()},
                                        Export{"b", "", std::make_shared<MemDisk>()}};
  ServerOptions opt;
  opt.handshake_timeout = std::chrono::milliseconds(200);
  opt.reply_timeout = std::chrono::milliseconds(200);
  opt.workers_per_connection = 4;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    size_t off = 0;
    while (off < client_bytes.size()) {
      ssize_t n = send(sv[0], client_bytes.data() + off, client_bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    shutdown(sv[0], SHUT_WR);
  });
  std::thread drain([&] {
    char buf[65536];
    while (read(sv[0], buf, sizeof buf) > 0) {
    }
  });
  ServeConnection(sv[1], exports, opt, stop, nullptr);
  shutdown(sv[1], SHUT_RDWR);
  writer.join();
  drain.join();
  close(sv[0]);
  close(sv[1]);
}

}  // namespace cloudkeep::nbd::fuzz
