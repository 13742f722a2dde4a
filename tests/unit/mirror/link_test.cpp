#include "mirror/link.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <thread>

namespace cloudkeep::mirror {
namespace {

class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as `mirror run` does: a refused peer's close is not fatal
    dir_ = std::filesystem::temp_directory_path() / ("ck-mirror-link-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    lfd_ = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(lfd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(listen(lfd_.get(), 4), 0);
    socklen_t len = sizeof sa;
    getsockname(lfd_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  ResourceConfig Psk(const std::string& key, const std::string& resource = "web") {
    std::string p = (dir_ / (resource + key.substr(0, 4) + ".psk")).string();
    EXPECT_TRUE(WriteFileAtomic(p, key + "\n").ok());
    ResourceConfig cfg;
    cfg.name = resource;
    cfg.psk_file = p;
    return cfg;
  }
  // A connected pair over the listening socket: {client, server}.
  void ConnectPair(const LinkAuth& auth, std::unique_ptr<Link>* client,
                   std::unique_ptr<Link>* server) {
    std::thread t([&] {
      UniqueFd fd(accept(lfd_.get(), nullptr, nullptr));
      auto l = Link::Accept(auth, std::move(fd), "client", Micros(2'000'000));
      ASSERT_TRUE(l.ok()) << l.status().message();
      *server = std::move(*l);
    });
    auto c = Link::Connect(auth, address_, Micros(2'000'000));
    t.join();
    ASSERT_TRUE(c.ok()) << c.status().message();
    ASSERT_TRUE(*server);
    *client = std::move(*c);
  }
  std::filesystem::path dir_;
  UniqueFd lfd_;
  std::string address_;
};

TEST_F(LinkTest, PskHandshakeAndFrames) {
  auto auth = LinkAuth::Create(Psk("0123456789abcdef0123456789abcdef"));
  ASSERT_TRUE(auth.ok()) << auth.status().message();
  std::unique_ptr<Link> client, server;
  ConnectPair(**auth, &client, &server);
  if (HasFatalFailure()) return;
  EXPECT_EQ(client->Cipher(), "TLS_AES_128_GCM_SHA256");
  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 7);
  wire::Header h;
  h.type = wire::Type::kWrite;
  h.seq = 5;
  h.payload_bytes = h.length = static_cast<uint32_t>(data.size());
  std::thread sender([&] { EXPECT_TRUE(client->Send(h, data.data(), Micros(5'000'000)).ok()); });
  wire::Header got;
  std::vector<uint8_t> payload;
  ASSERT_TRUE(server->Recv(&got, &payload, Micros(5'000'000)).ok());
  sender.join();
  EXPECT_EQ(got.seq, 5u);
  EXPECT_EQ(payload, data);
  // Nothing more arrives: the idle timeout says so.
  Status idle = server->Recv(&got, &payload, Micros(100'000));
  EXPECT_NE(idle.message().find("timed out"), std::string::npos) << idle.message();
}

// A batch of acknowledgements arrives as separate frames in order, and the
// receiver sees the rest of the batch waiting while it reads the first.
TEST_F(LinkTest, HeaderBatchesArriveInOrderAndShowAsWaiting) {
  auto auth = LinkAuth::Create(Psk("0123456789abcdef0123456789abcdef"));
  ASSERT_TRUE(auth.ok()) << auth.status().message();
  std::unique_ptr<Link> client, server;
  ConnectPair(**auth, &client, &server);
  if (HasFatalFailure()) return;
  EXPECT_FALSE(server->InputWaiting());
  std::vector<wire::Header> acks(3);
  for (size_t i = 0; i < acks.size(); i++) {
    acks[i].type = wire::Type::kAck;
    acks[i].seq = 10 + i;
    acks[i].flags = i == 1 ? wire::kFlagError : 0;
  }
  ASSERT_TRUE(client->SendHeaders(acks, Micros(2'000'000)).ok());
  wire::Header got;
  std::vector<uint8_t> payload;
  for (size_t i = 0; i < acks.size(); i++) {
    ASSERT_TRUE(server->Recv(&got, &payload, Micros(2'000'000)).ok());
    EXPECT_EQ(got.type, wire::Type::kAck);
    EXPECT_EQ(got.seq, 10 + i);
    EXPECT_EQ(got.flags, acks[i].flags);
    EXPECT_TRUE(payload.empty());
    EXPECT_EQ(server->InputWaiting(), i + 1 < acks.size()) << i;
  }
  // A frame with a payload is not a header: refused, nothing sent.
  std::vector<wire::Header> bad(1);
  bad[0].type = wire::Type::kWrite;
  bad[0].payload_bytes = 4;
  EXPECT_FALSE(client->SendHeaders(bad, Micros(2'000'000)).ok());
  EXPECT_FALSE(server->InputWaiting());
}

TEST_F(LinkTest, WrongKeyIsRefused) {
  auto good = LinkAuth::Create(Psk("0123456789abcdef0123456789abcdef"));
  auto bad = LinkAuth::Create(Psk("ffffffffffffffffffffffffffffffff"));
  ASSERT_TRUE(good.ok() && bad.ok());
  Status server_status;
  std::thread t([&] {
    UniqueFd fd(accept(lfd_.get(), nullptr, nullptr));
    server_status = Link::Accept(**good, std::move(fd), "client", Micros(2'000'000)).status();
  });
  auto client = Link::Connect(**bad, address_, Micros(2'000'000));
  t.join();
  EXPECT_FALSE(client.ok());
  EXPECT_FALSE(server_status.ok());
  EXPECT_NE(server_status.message().find("handshake"), std::string::npos)
      << server_status.message();
}

TEST_F(LinkTest, OtherResourceIsRefused) {
  auto good = LinkAuth::Create(Psk("0123456789abcdef0123456789abcdef", "web"));
  auto other = LinkAuth::Create(Psk("0123456789abcdef0123456789abcdef", "db"));
  Status server_status;
  std::thread t([&] {
    UniqueFd fd(accept(lfd_.get(), nullptr, nullptr));
    server_status = Link::Accept(**good, std::move(fd), "client", Micros(2'000'000)).status();
  });
  auto client = Link::Connect(**other, address_, Micros(2'000'000));
  t.join();
  EXPECT_FALSE(client.ok());
  EXPECT_FALSE(server_status.ok());
}

TEST_F(LinkTest, ShortKeyIsAUsageError) {
  auto a = LinkAuth::Create(Psk("short"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Status::Code::kUsage);
}

}  // namespace
}  // namespace cloudkeep::mirror
