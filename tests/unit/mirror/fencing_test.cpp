// The Fencer (mirror/fencing.h) against a real etcd that each test starts
// and kills itself (tests/unit/testing/etcd_server.h; label integration),
// with a fake FencingHost that records what the Fencer asked of the node
// and a manual clock for the validity rule (sent + TTL - margin), so that
// "suspends exactly when the rule says" is checked at the boundary itself,
// never by how long anything took. The fencing rules that live in the Node
// (a frame with an older token than seen is refused; fencing = "none"
// never promotes by itself) are in node_test.cpp.
//
// Waits are bounded (kBound) only so that a broken Fencer fails instead of
// hanging; no assertion depends on a duration.
#include "mirror/fencing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <thread>

#include "../testing/etcd_server.h"
#include "coord/election.h"

namespace cloudkeep::mirror {
namespace {

using namespace std::chrono_literals;
constexpr auto kBound = std::chrono::seconds(60);
constexpr coord::Timeout kCall = 2000ms;

// The time the Fencer computes its lease validity on; only the test moves it.
class ManualClock final : public Clock {
 public:
  TimePoint Now() const override { return TimePoint(TimePoint::duration(rep_.load())); }
  void Set(TimePoint t) { rep_ = t.time_since_epoch().count(); }

 private:
  std::atomic<TimePoint::duration::rep> rep_{
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::seconds(1000)).count()};
};

// Records every call; View() answers what the test set.
class FakeHost final : public FencingHost {
 public:
  FencingView View() override {
    std::lock_guard lk(mu_);
    return view_;
  }
  Status PromoteElected(uint64_t token, std::vector<std::string>*) override {
    std::lock_guard lk(mu_);
    view_.primary = true;
    promotions_.push_back(token);
    return Status::Ok();
  }
  void DemoteFenced(const std::string& why) override {
    std::lock_guard lk(mu_);
    view_.primary = false;
    demotes_.push_back(why);
  }
  void DropPeerLink(const std::string&) override {}
  void ObserveToken(uint64_t token) override {
    std::lock_guard lk(mu_);
    observed_.push_back(token);
  }
  void StartDivergence() override {
    std::lock_guard lk(mu_);
    divergences_++;
  }

  void Set(const std::function<void(FencingView&)>& f) {
    std::lock_guard lk(mu_);
    f(view_);
  }
  std::vector<uint64_t> promotions() {
    std::lock_guard lk(mu_);
    return promotions_;
  }
  std::vector<std::string> demotes() {
    std::lock_guard lk(mu_);
    return demotes_;
  }
  std::vector<uint64_t> observed() {
    std::lock_guard lk(mu_);
    return observed_;
  }
  int divergences() {
    std::lock_guard lk(mu_);
    return divergences_;
  }

 private:
  std::mutex mu_;
  FencingView view_{.primary = false,
                    .disk_state = "UpToDate",
                    .peer_connected = false,
                    .peer_role = "Unknown",
                    .peer_disk = "",
                    .resync_running = false,
                    .generation = 7};
  std::vector<uint64_t> promotions_;
  std::vector<std::string> demotes_;
  std::vector<uint64_t> observed_;
  int divergences_ = 0;
};

// Polls `pred` until it holds; false (and a failure) after kBound.
bool Eventually(const std::function<bool()>& pred, const std::string& what) {
  auto until = std::chrono::steady_clock::now() + kBound;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  ADD_FAILURE() << "never happened: " << what;
  return false;
}

class FencingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string bin;
    test_etcd::FindEtcdOrSkip(&bin);
    if (bin.empty()) return;
    server_ = std::make_unique<test_etcd::EtcdServer>(bin);
    ASSERT_NO_FATAL_FAILURE(server_->Start());
    coord::EtcdOptions o;
    o.endpoints = {server_->url()};
    o.connect_timeout = 500ms;
    auto c = coord::EtcdClient::Create(std::move(o));
    ASSERT_TRUE(c.ok()) << c.status().message();
    client_ = std::move(c).value();
    ASSERT_TRUE(server_->WaitHealthy(*client_)) << server_->LogTail();

    cfg_.name = "web";
    for (std::string n : {"a", "b"}) {
      NodeConfig nc;  // the Fencer needs only the names
      nc.name = n;
      cfg_.nodes.push_back(nc);
    }
    cfg_.fencing = Fencing::kEtcd;
    cfg_.etcd_endpoints = {server_->url()};
    cfg_.etcd_prefix = "/cktest";
    cfg_.lease_ttl = Micros(5'000'000);
    cfg_.suspend_margin = Micros(1'500'000);
    // Short rounds keep the test quick; the validity rule does not depend on them.
    cfg_.renew_interval = Micros(200'000);
    cfg_.etcd_timeout = Micros(500'000);
  }
  void TearDown() override {
    fencers_.clear();  // before etcd goes (a clean stop revokes the lease)
    if (HasFailure() && server_) std::cerr << "etcd log:\n" << server_->LogTail() << "\n";
  }

  Fencer* Make(const std::string& node, FakeHost* host) {
    auto f = Fencer::Create(cfg_, node, host, &clock_);
    EXPECT_TRUE(f.ok()) << f.status().message();
    if (!f.ok()) return nullptr;
    fencers_[node] = std::move(f).value();
    return fencers_[node].get();
  }
  bool Leads(Fencer* f, FakeHost& h) {
    return Eventually([&] { return f->leader() && !h.promotions().empty(); }, "elected");
  }
  std::string Key(const std::string& tail) { return "/cktest/web/" + tail; }
  std::string RecordOf(const std::string& node) {
    auto kv = client_->Get(Key("disk/" + node), kCall);
    if (!kv.ok() || !*kv) return "";
    return Json::parse((*kv)->value).value("state", "?");
  }

  ManualClock clock_;
  std::unique_ptr<test_etcd::EtcdServer> server_;
  std::unique_ptr<coord::EtcdClient> client_;
  ResourceConfig cfg_;
  std::map<std::string, std::unique_ptr<Fencer>> fencers_;
};

// Whether `f`'s status field `key` (a string) mentions `text`, eventually.
bool StatusSays(Fencer* f, const std::string& key, const std::string& text) {
  return Eventually([&] { return f->StatusJson().value(key, "").find(text) != std::string::npos; },
                    key + " mentions \"" + text + "\"");
}
bool Observed(FakeHost& h, uint64_t token) {
  return Eventually(
      [&] {
        auto o = h.observed();
        return std::find(o.begin(), o.end(), token) != o.end();
      },
      "token " + std::to_string(token) + " observed");
}

// The data path's question, asked on its own thread: the answer, or
// nothing yet while the Fencer holds it.
std::future<Status> AskAsync(Fencer* f, bool replicated) {
  return std::async(std::launch::async, [f, replicated] { return f->BeforeAck(replicated); });
}

TEST_F(FencingTest, TheUpToDateNodeIsElectedAndRecordedUpToDate) {
  FakeHost h;
  Fencer* f = Make("a", &h);
  ASSERT_TRUE(f);
  f->Start();
  ASSERT_TRUE(Leads(f, h));
  EXPECT_EQ(h.promotions().size(), 1u);
  EXPECT_EQ(h.promotions()[0], f->token());
  EXPECT_GT(f->token(), 0u);
  EXPECT_TRUE(Eventually([&] { return RecordOf("a") == "UpToDate"; }, "disk/a UpToDate"));
  auto kv = coord::GetLeader(*client_, Key("leader"), kCall);
  ASSERT_TRUE(kv.ok() && *kv);
  EXPECT_EQ(static_cast<uint64_t>((*kv)->create_revision), f->token())
      << "the token is the key's create_revision";
  EXPECT_TRUE(f->BeforeAck(true).ok());
}

// etcd gone: acknowledgements continue until sent + TTL - margin of the last
// successful keepalive, not one tick longer; they resume by themselves when
// etcd is back and the key is still this node's.
TEST_F(FencingTest, RenewalFailingSuspendsExactlyAtTheValidityBoundAndResumes) {
  FakeHost h;
  Fencer* f = Make("a", &h);
  ASSERT_TRUE(f);
  // The clock stands still, so every keepalive (the grant included) was
  // sent at t0 and the validity is t0 + 5 s - 1.5 s, however long etcd took.
  const TimePoint t0 = clock_.Now();
  const TimePoint bound = t0 + std::chrono::seconds(5) - std::chrono::milliseconds(1500);
  f->Start();
  ASSERT_TRUE(Leads(f, h));
  const uint64_t token = f->token();
  server_->Kill();
  ASSERT_TRUE(Eventually([&] { return !f->StatusJson()["etcd_reachable"].get<bool>(); },
                         "a renewal failed"));

  clock_.Set(bound - TimePoint::duration(1));
  EXPECT_TRUE(f->StatusJson()["lease_certainly_valid"].get<bool>());
  auto before = AskAsync(f, true);
  ASSERT_EQ(before.wait_for(kBound), std::future_status::ready)
      << "a write was held while the lease was still certainly valid";
  EXPECT_TRUE(before.get().ok());

  clock_.Set(bound);
  Json j = f->StatusJson();
  EXPECT_FALSE(j["lease_certainly_valid"].get<bool>());
  EXPECT_TRUE(j["suspended"].get<bool>());
  auto held = AskAsync(f, true);
  ASSERT_TRUE(StatusSays(f, "suspended_reason", "etcd unreachable"));
  // It is waiting (the gate says why), not answered: the lease cannot become
  // valid while etcd is down and the clock stands still.
  EXPECT_NE(held.wait_for(0s), std::future_status::ready);
  EXPECT_TRUE(f->leader()) << "suspended, not demoted: the key may still be ours";

  ASSERT_NO_FATAL_FAILURE(server_->Start());
  ASSERT_TRUE(server_->WaitHealthy(*client_)) << server_->LogTail();
  ASSERT_EQ(held.wait_for(kBound), std::future_status::ready) << "no resume after etcd returned";
  EXPECT_TRUE(held.get().ok());
  EXPECT_TRUE(f->leader());
  EXPECT_EQ(f->token(), token) << "the same term: etcd kept the lease and the key";
  EXPECT_TRUE(h.demotes().empty());
  EXPECT_TRUE(f->StatusJson()["lease_certainly_valid"].get<bool>());
}

// The key gone (the lease revoked behind the primary's back): it demotes
// itself, stops stamping its token, and a write waiting in BeforeAck (here
// for a standby that is gone, on_standby_loss = "suspend") is never
// answered with success.
TEST_F(FencingTest, KeyLostSelfDemotesAndFailsWaitingWrites) {
  cfg_.on_standby_loss = StandbyLoss::kSuspend;
  FakeHost h;
  Fencer* f = Make("a", &h);
  ASSERT_TRUE(f);
  f->Start();
  ASSERT_TRUE(Leads(f, h));
  // Not UpToDate any more (as a demoted node resyncing would be): it must
  // not simply win the key back, which would hide the demotion.
  h.Set([](FencingView& v) { v.disk_state = "Inconsistent"; });
  auto waiting = AskAsync(f, false);  // a change the (gone) standby lacks
  ASSERT_TRUE(StatusSays(f, "suspended_reason", "on_standby_loss"));
  EXPECT_NE(waiting.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(h.divergences(), 0) << "suspend never goes on alone";
  EXPECT_EQ(RecordOf("b"), "") << "suspend does not outdate the standby";

  const int64_t lease = f->StatusJson()["lease_id"].get<int64_t>();
  ASSERT_NE(lease, 0);
  ASSERT_TRUE(client_->LeaseRevoke(lease, kCall).ok());
  ASSERT_TRUE(Eventually([&] { return !h.demotes().empty(); }, "self-demotion"));
  EXPECT_FALSE(f->leader());
  EXPECT_EQ(f->token(), 0u) << "a deposed node stamps no token";
  ASSERT_EQ(waiting.wait_for(kBound), std::future_status::ready);
  EXPECT_FALSE(waiting.get().ok()) << "a write waiting when the key was lost was acknowledged";
  EXPECT_FALSE(f->BeforeAck(true).ok());
  EXPECT_EQ(h.promotions().size(), 1u) << "an Inconsistent copy campaigned";
}

// Another node holds the key (the old primary's term ended while it could
// not tell): it demotes, naming the holder, and learns the newer token.
TEST_F(FencingTest, KeyTakenByAnotherDemotesAndObservesItsToken) {
  FakeHost h;
  Fencer* f = Make("a", &h);
  ASSERT_TRUE(f);
  f->Start();
  ASSERT_TRUE(Leads(f, h));
  h.Set([](FencingView& v) { v.disk_state = "Inconsistent"; });
  const uint64_t old = f->token();
  // a's key goes, then b takes it under its own lease.
  auto l = client_->LeaseGrant(30, kCall);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE(client_->Delete(Key("leader"), kCall).ok());
  auto won =
      coord::CampaignOnce(*client_, Key("leader"), R"({"node":"b","address":""})", l->id, kCall);
  ASSERT_TRUE(won.ok() && won->won) << "the test could not take the key";
  const uint64_t newer = static_cast<uint64_t>(won->token());
  ASSERT_TRUE(Eventually([&] { return !h.demotes().empty(); }, "self-demotion"));
  EXPECT_FALSE(f->leader());
  EXPECT_GT(newer, old);
  EXPECT_TRUE(Observed(h, newer));
  Json j = f->StatusJson();
  EXPECT_EQ(j["leader"], "b");
  EXPECT_EQ(j["token"].get<int64_t>(), static_cast<int64_t>(newer));
}

// Each term's token is greater than every earlier one, and a standby learns
// the current one (the Node then refuses older frames; see below).
TEST_F(FencingTest, EachTermsTokenIsGreaterAndTheStandbyObservesIt) {
  FakeHost ha, hb;
  // a's standby b is connected and in sync: a records b UpToDate.
  ha.Set([](FencingView& v) {
    v.peer_connected = true;
    v.peer_role = "Secondary";
    v.peer_disk = "UpToDate";
  });
  Fencer* a = Make("a", &ha);
  ASSERT_TRUE(a);
  a->Start();
  ASSERT_TRUE(Leads(a, ha));
  const uint64_t t1 = a->token();
  ASSERT_TRUE(Eventually([&] { return RecordOf("b") == "UpToDate"; }, "disk/b UpToDate"));
  Fencer* b = Make("b", &hb);
  ASSERT_TRUE(b);
  b->Start();
  ASSERT_TRUE(Observed(hb, t1));
  EXPECT_FALSE(b->leader());
  EXPECT_TRUE(hb.promotions().empty()) << "b promoted while a holds the key";
  EXPECT_EQ(b->StatusJson()["leader"], "a");
  // a stops cleanly (revoking its lease): b's term follows, with a greater token.
  a->Stop();
  ASSERT_TRUE(Leads(b, hb));
  const uint64_t t2 = b->token();
  EXPECT_GT(t2, t1);
  EXPECT_EQ(hb.promotions(), std::vector<uint64_t>{t2});
}

// The primary without its standby, on_standby_loss = "continue": the
// standby is recorded Outdated in etcd before the first change it lacks is
// acknowledged, and a new generation starts.
TEST_F(FencingTest, StandbyLossContinueOutdatesTheStandbyFirst) {
  FakeHost h;
  Fencer* f = Make("a", &h);
  ASSERT_TRUE(f);
  f->Start();
  ASSERT_TRUE(Leads(f, h));
  EXPECT_EQ(RecordOf("b"), "");
  EXPECT_EQ(h.divergences(), 0);
  EXPECT_TRUE(f->BeforeAck(false).ok());
  EXPECT_EQ(RecordOf("b"), "Outdated") << "acknowledged before b was recorded Outdated";
  EXPECT_EQ(h.divergences(), 1);
  EXPECT_TRUE(f->BeforeAck(false).ok());
  EXPECT_EQ(h.divergences(), 1) << "one divergence per loss, not per write";
}

// etcd records this copy Outdated: no campaign, a plain promote is refused,
// and promote --force campaigns with a warning.
TEST_F(FencingTest, PromotionRefusedWhenTheRecordIsNotUpToDate) {
  Json rec{{"state", "Outdated"}, {"generation", "1"}, {"by", "b"}, {"token", 1}};
  ASSERT_TRUE(client_->Put(Key("disk/a"), rec.dump(), 0, kCall).ok());
  FakeHost h;
  Fencer* f = Make("a", &h);
  ASSERT_TRUE(f);
  f->Start();
  ASSERT_TRUE(StatusSays(f, "not_campaigning", "records this copy as Outdated"));
  EXPECT_FALSE(f->leader());
  EXPECT_TRUE(h.promotions().empty());
  std::vector<std::string> notes;
  Status s = f->ManualPromote(false, &notes);
  EXPECT_EQ(s.code(), Status::Code::kUsage) << s.message();
  EXPECT_NE(s.message().find("does not hold the leader key"), std::string::npos) << s.message();
  EXPECT_TRUE(h.promotions().empty());
  s = f->ManualPromote(true, &notes);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_FALSE(notes.empty());
  EXPECT_NE(notes[0].find("promote --force"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("Outdated"), std::string::npos) << notes[0];
  EXPECT_EQ(h.promotions().size(), 1u);
}

TEST_F(FencingTest, ALocallyOutdatedCopyNeverCampaigns) {
  FakeHost h;
  h.Set([](FencingView& v) { v.disk_state = "Outdated"; });
  Fencer* f = Make("a", &h);
  ASSERT_TRUE(f);
  f->Start();
  ASSERT_TRUE(StatusSays(f, "not_campaigning", "this copy is Outdated"));
  EXPECT_TRUE(h.promotions().empty());
  auto kv = coord::GetLeader(*client_, Key("leader"), kCall);
  ASSERT_TRUE(kv.ok());
  EXPECT_FALSE(kv->has_value()) << "an Outdated copy took the leader key";
}

}  // namespace
}  // namespace cloudkeep::mirror
