// A real single-member etcd for tests that need one (coord, mirror fencing).
//
// EtcdServer starts etcd on free loopback ports with a private data
// directory and kills it (SIGKILL) and removes the directory when destroyed,
// passed or failed; the child also dies with the test process
// (PR_SET_PDEATHSIG). Kill() then Start() again restarts it on the same
// ports and data (etcd keeps its leases and keys). The etcd binary is
// $CK_ETCD, else etcd on the PATH (FindEtcd returns "" when there is none).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coord/etcd_client.h"

namespace cloudkeep::test_etcd {

inline std::string FindEtcd() {
  if (const char* e = std::getenv("CK_ETCD"); e && *e) return e;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string p = dir + "/etcd";
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Sets *bin to the etcd binary; none: skips the test, or fails it under
// CI=true (a missing component is a failure there). The caller returns
// when *bin is empty.
inline void FindEtcdOrSkip(std::string* bin) {
  *bin = FindEtcd();
  if (!bin->empty()) return;
  const char* ci = std::getenv("CI");
  if (ci && std::string(ci) == "true")
    FAIL() << "etcd not found (set CK_ETCD or install etcd-server); CI=true: a missing "
              "component is a failure, not a skip";
  GTEST_SKIP() << "etcd not found (set CK_ETCD or install etcd-server)";
}

// A port nobody listens on right now: bind port 0, read it, close.
inline uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return 0;
  }
  close(fd);
  return ntohs(a.sin_port);
}

class EtcdServer {
 public:
  explicit EtcdServer(std::string binary) : binary_(std::move(binary)) {
    const char* base = std::getenv("TMPDIR");
    std::string t = std::string(base && *base ? base : "/tmp") + "/ck-coord-etcd.XXXXXX";
    if (mkdtemp(t.data()) != nullptr) dir_ = t;
    client_port_ = FreePort();
    peer_port_ = FreePort();
  }
  ~EtcdServer() {
    Kill();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::string url() const {
    return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(client_port_);
  }
  const std::string& dir() const { return dir_; }
  // Serve clients over TLS with DIR/server.{crt,key}, requiring a client
  // certificate signed by DIR/ca.crt.
  void UseTls(std::string cert_dir) {
    tls_ = true;
    cert_dir_ = std::move(cert_dir);
  }

  void Start() {
    ASSERT_EQ(pid_, -1);
    ASSERT_FALSE(dir_.empty()) << "mkdtemp failed";
    ASSERT_NE(client_port_, 0);
    ASSERT_NE(peer_port_, 0);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {binary_,        "--name",
                                     "ck",           "--data-dir",
                                     dir_ + "/data", "--listen-client-urls",
                                     url(),          "--advertise-client-urls",
                                     url(),          "--listen-peer-urls",
                                     peer,           "--initial-advertise-peer-urls",
                                     peer,           "--initial-cluster",
                                     "ck=" + peer,   "--log-level",
                                     "warn"};
    if (tls_) {
      args.push_back("--cert-file=" + cert_dir_ + "/server.crt");
      args.push_back("--key-file=" + cert_dir_ + "/server.key");
      args.push_back("--trusted-ca-file=" + cert_dir_ + "/ca.crt");
      args.push_back("--client-cert-auth");
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = dir_ + "/etcd.log";
    const pid_t parent = getpid();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    pid_ = pid;
  }

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string LogTail() const {
    std::ifstream in(dir_ + "/etcd.log");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > 3000 ? all.substr(all.size() - 3000) : all;
  }

  // Polls /health until etcd answers, the process exits, or 30 s pass.
  bool WaitHealthy(coord::EtcdClient& client) {
    for (int i = 0; i < 300; ++i) {
      if (client.Health(std::chrono::milliseconds(500)).ok()) return true;
      if (pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

 private:
  std::string binary_;
  std::string dir_;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  pid_t pid_ = -1;
  bool tls_ = false;
  std::string cert_dir_;
};

}  // namespace cloudkeep::test_etcd
