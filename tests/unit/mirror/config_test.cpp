#include "mirror/config.h"

#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace cloudkeep::mirror {
namespace {

const char* kGood = R"(
[resource.web]
protocol = "sync"
psk_file = "/etc/cloudkeep/web.psk"
[[resource.web.node]]
name = "a"
address = "10.0.0.1:7789"
device = "/srv/vm/web.img"
meta = "/var/lib/cloudkeep/mirror/web-a.meta"
[[resource.web.node]]
name = "b"
address = "10.0.1.1:7789"
device = "/srv/vm/web.img"
meta = "/var/lib/cloudkeep/mirror/web-b.meta"
)";

TEST(MirrorConfig, ParsesTheIssueExample) {
  auto cfg = ParseResourceConfig(kGood, "mirror.toml", "web");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->protocol, Protocol::kSync);
  ASSERT_EQ(cfg->nodes.size(), 2u);
  EXPECT_EQ(cfg->nodes[1].address, "10.0.1.1:7789");
  EXPECT_EQ(cfg->PeerOf("a")->name, "b");
  EXPECT_EQ(cfg->FindNode("c"), nullptr);
  EXPECT_EQ(cfg->bitmap_granularity, 64u * 1024);
}

void ExpectUsage(const std::string& text, const std::string& needle,
                 const std::string& res = "web") {
  auto cfg = ParseResourceConfig(text, "m.toml", res);
  ASSERT_FALSE(cfg.ok()) << text;
  EXPECT_EQ(cfg.status().code(), Status::Code::kUsage);
  EXPECT_NE(cfg.status().message().find(needle), std::string::npos) << cfg.status().message();
  EXPECT_EQ(cfg.status().message().find('\n'), std::string::npos);
}

std::string Replace(std::string s, const std::string& a, const std::string& b) {
  s.replace(s.find(a), a.size(), b);
  return s;
}

TEST(MirrorConfig, RejectsBadValuesNamingThem) {
  ExpectUsage(kGood, "unknown resource 'db'", "db");
  ExpectUsage(Replace(kGood, "\"sync\"", "\"C2\""), "'C2'");
  ExpectUsage(Replace(kGood, "psk_file = \"/etc/cloudkeep/web.psk\"", ""), "psk_file");
  ExpectUsage(Replace(kGood, "psk_file", "tls_cert"), "tls_key");
  ExpectUsage(Replace(kGood, "name = \"b\"", "name = \"a\""), "'a' appears twice");
  ExpectUsage(Replace(kGood, "10.0.1.1:7789", "10.0.1.1:99999"), "99999");
  ExpectUsage(Replace(kGood, "protocol", "protocl"), "unknown key 'protocl'");
  ExpectUsage(Replace(kGood, "protocol = \"sync\"", "bitmap_granularity = \"3KiB\""),
              "bitmap_granularity");
  ExpectUsage(Replace(kGood, "protocol = \"sync\"", "fencing = \"etcd\""), "etcd_endpoints");
  ExpectUsage(Replace(kGood, "protocol = \"sync\"", "fencing = \"raft\""), "'raft'");
  ExpectUsage("[resource.web\n", "m.toml:");
}

TEST(MirrorConfig, Fencing) {
  auto none = ParseResourceConfig(kGood, "m.toml", "web");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->fencing, Fencing::kNone);
  const std::string etcd = "fencing = \"etcd\"\netcd_endpoints = [\"http://10.0.9.1:2379\"]\n";
  auto cfg = ParseResourceConfig(
      Replace(kGood, "protocol = \"sync\"",
              etcd + "on_standby_loss = \"suspend\"\nservice_address = \"10.0.5.10/24\"\n"
                     "service_interface = \"eth1\"\non_promote = [\"/usr/local/bin/hook\", \"x\"]"),
      "m.toml", "web");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->fencing, Fencing::kEtcd);
  EXPECT_EQ(cfg->etcd_endpoints, std::vector<std::string>{"http://10.0.9.1:2379"});
  EXPECT_EQ(cfg->etcd_prefix, "/cloudkeep/mirror");
  EXPECT_EQ(cfg->on_standby_loss, StandbyLoss::kSuspend);
  EXPECT_EQ(cfg->service_address, "10.0.5.10/24");
  EXPECT_EQ(cfg->on_promote, "/usr/local/bin/hook");
  EXPECT_EQ(cfg->on_promote_args, std::vector<std::string>{"x"});
  EXPECT_EQ(cfg->lease_ttl, Micros(3'000'000));
  EXPECT_EQ(cfg->renew_interval, Micros(500'000));
  EXPECT_EQ(cfg->suspend_margin, Micros(1'250'000));
  EXPECT_EQ(cfg->etcd_timeout, Micros(500'000));
  // The defaults satisfy the inequality the parser enforces.
  EXPECT_LT(cfg->renew_interval + cfg->etcd_timeout, cfg->lease_ttl - cfg->suspend_margin);
  auto with = [&](const std::string& extra) {
    return Replace(kGood, "protocol = \"sync\"", etcd + extra);
  };
  ExpectUsage(with("service_address = \"10.0.5.10\"\nservice_interface = \"eth1\""), "'10.0.5.10'");
  ExpectUsage(with("service_address = \"10.0.5.10/24\""), "service_interface");
  ExpectUsage(with("on_standby_loss = \"panic\""), "'panic'");
  ExpectUsage(with("lease_ttl = \"2500ms\""), "lease_ttl");
  ExpectUsage(with("renew_interval = \"3s\""), "renew_interval 3s");
  ExpectUsage(Replace(kGood, "protocol = \"sync\"", "etcd_endpoints = [\"10.0.9.1:2379\"]"),
              "'10.0.9.1:2379'");
  ExpectUsage(Replace(kGood, "protocol = \"sync\"",
                      "service_address = \"10.0.5.10/24\"\nservice_interface = \"eth1\""),
              "fencing");
}

TEST(MirrorConfig, AsyncAndSizes) {
  auto cfg = ParseResourceConfig(Replace(Replace(kGood, "\"sync\"", "\"async\""), "protocol",
                                         "bitmap_granularity = \"4KiB\"\nprotocol"),
                                 "m.toml", "web");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->protocol, Protocol::kAsync);
  EXPECT_EQ(cfg->bitmap_granularity, 4096u);
}

class LocalFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ck-mirror-cfg-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Make(const std::string& name, uint64_t size) {
    std::string p = (dir_ / name).string();
    std::ofstream(p).close();
    std::filesystem::resize_file(p, size);
    return p;
  }
  std::string Config(const std::string& dev_a, const std::string& dev_b) {
    std::string t = kGood;
    t = Replace(t, "/srv/vm/web.img", dev_a);
    t = Replace(t, "/srv/vm/web.img", dev_b);
    return t;
  }
  std::filesystem::path dir_;
};

TEST_F(LocalFiles, ValidateLocal) {
  std::string a = Make("a.img", 1 << 20), b = Make("b.img", 1 << 20), c = Make("c.img", 2 << 20);
  auto cfg = ParseResourceConfig(Config(a, b), "m.toml", "web");
  ASSERT_TRUE(cfg.ok());
  auto size = ValidateLocal(*cfg, "a");
  ASSERT_TRUE(size.ok()) << size.status().message();
  EXPECT_EQ(*size, 1u << 20);
  auto unknown = ValidateLocal(*cfg, "z");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Status::Code::kUsage);
  EXPECT_NE(unknown.status().message().find("unknown node 'z'"), std::string::npos);

  auto cfg2 = ParseResourceConfig(Config(a, c), "m.toml", "web");
  auto differ = ValidateLocal(*cfg2, "a");
  ASSERT_FALSE(differ.ok());
  EXPECT_EQ(differ.status().code(), Status::Code::kUsage);
  EXPECT_NE(differ.status().message().find("sizes differ"), std::string::npos)
      << differ.status().message();

  auto cfg3 = ParseResourceConfig(Config(a, (dir_ / "missing.img").string()), "m.toml", "web");
  EXPECT_TRUE(ValidateLocal(*cfg3, "a").ok());
  EXPECT_FALSE(ValidateLocal(*cfg3, "b").ok());
}

TEST_F(LocalFiles, LockDeviceRefusesASecondUser) {
  std::string a = Make("a.img", 4096);
  auto first = LockDevice(a);
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto second = LockDevice(a);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kUsage);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
}

}  // namespace
}  // namespace cloudkeep::mirror
