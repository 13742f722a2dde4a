// The mirror daemon's state machine in one process: two Nodes of one
// resource on loopback, driven through Node's data path (what the NBD export
// calls) and control operations (what the control socket calls). The
// integration tests drive the same through real clients and hosts; these
// pin the transitions themselves: full sync, replication of writes and
// zeroing, a standby that goes away and comes back (only dirty regions
// travel), protocol A, role changes, and promote's refusals.
#include "mirror/node.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "mirror/generation.h"
#include "mirror/metadata.h"

namespace cloudkeep::mirror {
namespace {

constexpr uint64_t kSize = 8 * 1024 * 1024;
constexpr uint64_t kGran = 64 * 1024;

int FreePort() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return -1;
  socklen_t len = sizeof sa;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As `mirror run` does (src/cli/mirror_cmd.cpp): a peer that closes the
    // link mid-write is an error to handle, not a signal that ends the process.
    signal(SIGPIPE, SIG_IGN);
    dir_ = std::filesystem::temp_directory_path() /
           ("ck-mirror-node-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    cfg_.name = "web";
    cfg_.psk_file = Path("psk");
    ASSERT_TRUE(WriteFileAtomic(cfg_.psk_file, "00112233445566778899aabbccddeeff\n").ok());
    cfg_.bitmap_granularity = kGran;
    cfg_.peer_timeout = Micros(2'000'000);
    cfg_.connect_interval = Micros(50'000);
    for (std::string n : {"a", "b"}) {
      NodeConfig nc;
      nc.name = n;
      nc.address = "127.0.0.1:" + std::to_string(FreePort());
      nc.device = Path(n + ".img");
      nc.meta = Path(n + ".meta");
      cfg_.nodes.push_back(nc);
      std::ofstream(nc.device).close();
      std::filesystem::resize_file(nc.device, kSize);
    }
    // a holds the data; b is new and gets a full sync.
    std::string pattern(kSize, '\0');
    for (uint64_t i = 0; i < kSize; i++) pattern[i] = static_cast<char>((i * 131) >> 9);
    ASSERT_TRUE(WriteFileAtomic(cfg_.nodes[0].device, pattern).ok());
    InitMeta(cfg_.nodes[0], true);
    InitMeta(cfg_.nodes[1], false);
  }
  void TearDown() override {
    nodes_.clear();
    std::filesystem::remove_all(dir_);
  }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }

  void InitMeta(const NodeConfig& n, bool uptodate) {
    Superblock sb;
    sb.resource = cfg_.name;
    sb.node = n.name;
    sb.peer = cfg_.PeerOf(n.name)->name;
    sb.device_size = kSize;
    sb.granularity = cfg_.bitmap_granularity;
    sb.al_extent_size = cfg_.al_extent_size;
    sb.al_slots = cfg_.al_extents;
    sb.gen.current = uptodate ? NewGenerationId() : 0;
    ASSERT_TRUE(Metadata::Create(n.meta, sb).ok());
  }

  Node* Start(const std::string& name, bool primary) {
    NodeOptions o;
    o.cfg = cfg_;
    o.node = name;
    o.run_dir = Path("run");
    o.start_primary = primary;
    auto n = Node::Start(o);
    EXPECT_TRUE(n.ok()) << n.status().message();
    if (!n.ok()) return nullptr;
    nodes_[name] = std::move(*n);
    return nodes_[name].get();
  }
  void Kill(const std::string& name) { nodes_.erase(name); }

  // Polls `n`'s status until `pred` holds (a bound on waiting, not a timing assertion).
  bool WaitFor(Node* n, const std::function<bool(const Json&)>& pred) {
    for (int i = 0; i < 600; i++) {
      if (pred(n->StatusJson())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "condition not reached; status: " << n->StatusJson().dump();
    return false;
  }
  static bool InSync(const Json& j) {
    return j["connection"] == "Connected" && j["disk_state"] == "UpToDate" &&
           j["peer"]["disk_state"] == "UpToDate" && !j.contains("resync");
  }
  void ExpectIdentical() {
    std::string a = ReadAll(cfg_.nodes[0].device), b = ReadAll(cfg_.nodes[1].device);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++)
      if (a[i] != b[i]) FAIL() << "copies differ first at byte " << i;
  }

  std::filesystem::path dir_;
  ResourceConfig cfg_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

TEST_F(NodeTest, FullSyncThenWritesAndZeroesReplicate) {
  Node* a = Start("a", true);
  Node* b = Start("b", false);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitFor(b, InSync));
  EXPECT_EQ(a->StatusJson()["last_resync"]["bytes"], kSize);  // new standby: everything
  ExpectIdentical();

  std::string data(12345, 'x');
  ASSERT_TRUE(a->Write(data.data(), data.size(), 777, false).ok());
  ASSERT_TRUE(a->Write(data.data(), 4096, kSize - 4096, true).ok());
  ASSERT_TRUE(a->Zero(256 * 1024, 1024 * 1024, /*may_trim=*/true, false).ok());
  ASSERT_TRUE(a->Zero(8192, 3 * 1024 * 1024 + 100, /*may_trim=*/false, true).ok());
  ASSERT_TRUE(a->Flush().ok());
  // Protocol C: every change above was acknowledged by b before it returned.
  ExpectIdentical();
  std::string b_img = ReadAll(cfg_.nodes[1].device);
  EXPECT_EQ(b_img.substr(777, data.size()), data);
  EXPECT_EQ(b_img.substr(1024 * 1024, 256 * 1024), std::string(256 * 1024, '\0'));
  EXPECT_EQ(b_img.substr(3 * 1024 * 1024 + 100, 8192), std::string(8192, '\0'));
  EXPECT_EQ(a->StatusJson()["out_of_sync_bytes"], 0);
  EXPECT_EQ(a->StatusJson()["write_latency"]["writes"], 4);
}

TEST_F(NodeTest, StandbyAwayOnlyDirtyRegionsTravel) {
  Node* a = Start("a", true);
  Node* b = Start("b", false);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitFor(b, InSync));
  Kill("b");
  ASSERT_TRUE(WaitFor(a, [](const Json& j) { return j["connection"] != "Connected"; }));
  // Three writes in three bitmap regions, one zeroing across two more.
  std::string data(4096, 'y');
  for (uint64_t off : {uint64_t{0}, 5 * kGran + 10, 100 * kGran})
    ASSERT_TRUE(a->Write(data.data(), data.size(), off, false).ok());
  ASSERT_TRUE(a->Zero(kGran, 20 * kGran + kGran / 2, true, false).ok());
  EXPECT_EQ(a->StatusJson()["out_of_sync_bytes"], 5 * kGran);
  b = Start("b", false);
  ASSERT_TRUE(b);
  ASSERT_TRUE(WaitFor(b, InSync));
  EXPECT_EQ(a->StatusJson()["last_resync"]["bytes"], 5 * kGran);
  EXPECT_EQ(a->StatusJson()["out_of_sync_bytes"], 0);
  ExpectIdentical();
}

TEST_F(NodeTest, PromoteRefusesAnInconsistentCopyAndTwoPrimaries) {
  Node* b = Start("b", false);
  ASSERT_TRUE(b);
  std::vector<std::string> notes;
  Status s = b->Promote(false, &notes);
  EXPECT_EQ(s.code(), Status::Code::kUsage);
  EXPECT_NE(s.message().find("Inconsistent"), std::string::npos) << s.message();
  Node* a = Start("a", true);
  ASSERT_TRUE(a);
  ASSERT_TRUE(WaitFor(b, InSync));
  s = b->Promote(false, &notes);
  EXPECT_EQ(s.code(), Status::Code::kUsage);
  EXPECT_NE(s.message().find("demote it first"), std::string::npos) << s.message();
  // Roles switch: b serves, its writes reach a.
  ASSERT_TRUE(a->Demote().ok());
  ASSERT_TRUE(WaitFor(b, [](const Json& j) { return j["peer"]["role"] == "Secondary"; }));
  notes.clear();
  ASSERT_TRUE(b->Promote(false, &notes).ok());
  EXPECT_TRUE(notes.empty());
  std::string data(65536, 'z');
  ASSERT_TRUE(b->Write(data.data(), data.size(), 2 * 1024 * 1024, true).ok());
  ExpectIdentical();
  EXPECT_EQ(a->StatusJson()["role"], "Secondary");
  EXPECT_EQ(b->StatusJson()["role"], "Primary");
}

TEST_F(NodeTest, ProtocolAQueuesAndConverges) {
  cfg_.protocol = Protocol::kAsync;
  Node* a = Start("a", true);
  Node* b = Start("b", false);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitFor(b, InSync));
  EXPECT_TRUE(a->StatusJson().contains("async"));
  std::string data(4096, 'q');
  for (int i = 0; i < 200; i++)
    ASSERT_TRUE(a->Write(data.data(), data.size(), static_cast<uint64_t>(i) * 40960, false).ok());
  ASSERT_TRUE(a->Flush().ok());
  ASSERT_TRUE(WaitFor(a, [](const Json& j) { return j["in_flight_writes"] == 0; }));
  ExpectIdentical();
}

// Fencing rules that live in the Node (issue 13; the Fencer's own are in
// fencing_test.cpp). b has seen token 1000 (kept in its superblock across
// restarts); a, a primary with no token (0), is a deposed primary to it: b
// applies none of its writes, and a marks them out of sync instead.
TEST_F(NodeTest, AFrameWithAnOlderTokenThanSeenIsRefused) {
  Node* a = Start("a", true);
  ASSERT_TRUE(a && Start("b", false));
  ASSERT_TRUE(WaitFor(nodes_["b"].get(), InSync));
  Kill("b");
  {
    auto m = Metadata::Open(cfg_.nodes[1].meta);
    ASSERT_TRUE(m.ok()) << m.status().message();
    ASSERT_TRUE((*m)->Update([](Superblock& sb) { sb.max_token = 1000; }).ok());
  }
  ASSERT_TRUE(Start("b", false));
  ASSERT_TRUE(WaitFor(a, InSync));
  std::string data(4096, '\x5a');
  ASSERT_TRUE(a->Write(data.data(), data.size(), 64 * 1024, false).ok())
      << "the local write itself succeeds";
  ASSERT_TRUE(WaitFor(a, [](const Json& j) { return j["out_of_sync_bytes"].get<uint64_t>() > 0; }));
  EXPECT_NE(ReadAll(cfg_.nodes[1].device).substr(64 * 1024, data.size()), data)
      << "b applied a write stamped with an older token than it had seen";
}

// fencing = "none": an UpToDate node never promotes itself, with its peer
// or alone, and a manual promote without the peer warns that a second
// primary cannot be excluded.
TEST_F(NodeTest, FencingNoneNeverPromotesByItself) {
  ASSERT_EQ(cfg_.fencing, Fencing::kNone);
  Node* a = Start("a", false);
  Node* b = Start("b", false);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitFor(a, [](const Json& j) { return j["connection"] == "Connected"; }));
  EXPECT_EQ(a->StatusJson()["role"], "Secondary");
  EXPECT_EQ(b->StatusJson()["role"], "Secondary");
  Kill("b");
  ASSERT_TRUE(WaitFor(a, [](const Json& j) { return j["connection"] != "Connected"; }));
  EXPECT_EQ(a->StatusJson()["role"], "Secondary") << "a promoted itself without fencing";
  std::vector<std::string> notes;
  Status s = a->Promote(false, &notes);
  ASSERT_TRUE(s.ok()) << s.message();
  bool warned = false;
  for (const auto& n : notes)
    warned = warned || n.find("cannot exclude a second primary") != std::string::npos;
  EXPECT_TRUE(warned) << "promote without the peer did not warn";
  EXPECT_EQ(a->StatusJson()["role"], "Primary");
}

}  // namespace
}  // namespace cloudkeep::mirror
