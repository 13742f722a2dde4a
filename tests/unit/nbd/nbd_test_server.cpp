// nbd_test_server: the NBD server core over one file, for the protocol tests
// (tests/integration/test_nbd_protocol.sh), as nbdkit's tests serve its file
// plugin. Not installed.
//
//   nbd_test_server FILE [--readonly] [--listen ADDR:PORT]... [--socket PATH]
//                   [--name NAME] [--description TEXT] [--no-trim] [--no-zero]
//                   [--no-extents] [--no-multi-conn] [--max-connections N]
//                   [--handshake-timeout-ms N] [--reply-timeout-ms N] [--workers N]
//
// Prints one line "listening ADDRESS…" on stdout once it accepts clients,
// then serves until SIGINT or SIGTERM, and prints its counters on exit.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "nbd/file_backend.h"
#include "nbd/server.h"

using namespace cloudkeep;

namespace {

// Hides capabilities of the file backend, to test what the server
// advertises and refuses without them.
class Restricted : public nbd::Backend {
 public:
  Restricted(std::unique_ptr<nbd::FileBackend> f, nbd::BackendCaps mask)
      : f_(std::move(f)), mask_(mask) {}
  uint64_t Size() const override { return f_->Size(); }
  nbd::BackendCaps Caps() const override {
    nbd::BackendCaps c = f_->Caps();
    c.trim &= mask_.trim;
    c.zero &= mask_.zero;
    c.fast_zero &= mask_.fast_zero;
    c.extents &= mask_.extents;
    c.multi_conn &= mask_.multi_conn;
    return c;
  }
  std::string Description() const override { return f_->Description(); }
  Status Pread(void* b, uint64_t n, uint64_t o) override { return f_->Pread(b, n, o); }
  Status Pwrite(const void* b, uint64_t n, uint64_t o, bool fua) override {
    return f_->Pwrite(b, n, o, fua);
  }
  Status Flush() override { return f_->Flush(); }
  Status Trim(uint64_t n, uint64_t o, bool fua) override { return f_->Trim(n, o, fua); }
  Status Zero(uint64_t n, uint64_t o, bool t, bool fast, bool fua) override {
    return f_->Zero(n, o, t, fast, fua);
  }
  Status Extents(uint64_t n, uint64_t o, std::vector<nbd::Extent>* out) override {
    return f_->Extents(n, o, out);
  }
  Status Cache(uint64_t n, uint64_t o) override { return f_->Cache(n, o); }

 private:
  std::unique_ptr<nbd::FileBackend> f_;
  nbd::BackendCaps mask_;
};

int Usage(const std::string& why) {
  std::fprintf(stderr, "nbd_test_server: %s\n", why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string file, name, description;
  bool readonly = false;
  nbd::BackendCaps mask;
  mask.trim = mask.zero = mask.fast_zero = mask.extents = mask.multi_conn = true;
  nbd::ServerOptions opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--readonly")
      readonly = true;
    else if (a == "--listen")
      opt.listen.push_back(next());
    else if (a == "--socket")
      opt.unix_socket = next();
    else if (a == "--name")
      name = next();
    else if (a == "--description")
      description = next();
    else if (a == "--no-trim")
      mask.trim = false;
    else if (a == "--no-zero")
      mask.zero = mask.fast_zero = false;
    else if (a == "--no-extents")
      mask.extents = false;
    else if (a == "--no-multi-conn")
      mask.multi_conn = false;
    else if (a == "--max-connections")
      opt.max_connections = std::stoul(next());
    else if (a == "--handshake-timeout-ms")
      opt.handshake_timeout = std::chrono::milliseconds(std::stol(next()));
    else if (a == "--reply-timeout-ms")
      opt.reply_timeout = std::chrono::milliseconds(std::stol(next()));
    else if (a == "--workers")
      opt.workers_per_connection = static_cast<unsigned>(std::stoul(next()));
    else if (!a.empty() && a[0] == '-')
      return Usage("unknown option " + a);
    else
      file = a;
  }
  if (file.empty()) return Usage("name a FILE");
  auto fb = nbd::FileBackend::Open(file, !readonly);
  if (!fb.ok()) return Usage(fb.status().message());
  auto backend = std::make_shared<Restricted>(std::move(fb).value(), mask);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // every thread inherits the mask

  auto server = nbd::Server::Start(opt, {nbd::Export{name, description, backend}});
  if (!server.ok()) {
    std::fprintf(stderr, "nbd_test_server: %s\n", server.status().message().c_str());
    return server.status().exit_code();
  }
  std::string line = "listening";
  for (const auto& a : (*server)->Addresses()) line += " " + a;
  std::cout << line << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->Stop();
  (*server)->Wait();
  nbd::ServerStats s = (*server)->Stats();
  std::printf("connections_total=%llu refused=%llu requests=%llu errors=%llu\n",
              static_cast<unsigned long long>(s.connections_total),
              static_cast<unsigned long long>(s.connections_refused),
              static_cast<unsigned long long>(s.requests_total),
              static_cast<unsigned long long>(s.errors_total));
  return 0;
}
