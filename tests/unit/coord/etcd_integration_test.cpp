// ck_coord against a real etcd (label integration).
//
// Each test starts its own single-member etcd on free loopback ports with a
// private data directory, and kills it (SIGKILL) and removes the directory
// when the test ends, passed or failed; the child also dies with this process
// (PR_SET_PDEATHSIG). The etcd binary is $CK_ETCD, else etcd on the PATH;
// missing, the tests skip, or fail under CI=true.
//
// No timed assertions: the tests check the order of events (the loser wins
// only after the winner's lease is gone, and after the winner's own clock
// says its lease is no longer certainly valid), never how long things took.
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
#include <thread>

#include "../testing/etcd_server.h"
#include "coord/election.h"
#include "coord/etcd_client.h"
#include "coord/lease.h"
#include "core/fs.h"
#include "core/subprocess.h"

namespace cloudkeep::coord {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

using test_etcd::EtcdServer;
using test_etcd::FreePort;

// A TCP listener that accepts into its backlog and never answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(fd_, 16) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A CA, a server certificate for 127.0.0.1 and a client certificate, made
// with the openssl command. Returns "" on success, else what failed.
std::string MakeCertificates(const std::string& dir) {
  const std::string script =
      "set -e; cd '" + dir +
      "'\n"
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ck-test-ca "
      "-keyout ca.key -out ca.crt\n"
      "for who in server client; do\n"
      "  openssl req -newkey rsa:2048 -nodes -subj /CN=ck-$who -keyout $who.key -out $who.csr\n"
      "  printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' "
      "> $who.ext\n"
      "  openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile $who.ext -out $who.crt\n"
      "done\n";
  SubprocessOptions o;
  o.timeout = std::chrono::seconds(60);
  auto r = RunShell(script, o);
  if (!r.ok()) return r.status().message();
  if (!r->success()) return r->Describe() + ": " + r->output;
  return "";
}

std::unique_ptr<EtcdClient> MakeClient(std::vector<std::string> endpoints, std::string user = "",
                                       std::string password = "") {
  EtcdOptions o;
  o.endpoints = std::move(endpoints);
  o.connect_timeout = 500ms;
  o.username = std::move(user);
  o.password = std::move(password);
  auto c = EtcdClient::Create(std::move(o));
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? std::move(c).value() : nullptr;
}

constexpr Timeout kCall = 2000ms;

class Etcd : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string bin;
    test_etcd::FindEtcdOrSkip(&bin);
    if (bin.empty()) return;
    bin_ = bin;
    server_ = std::make_unique<EtcdServer>(bin);
    ASSERT_NO_FATAL_FAILURE(server_->Start());
    client_ = MakeClient({server_->url()});
    ASSERT_TRUE(client_);
    ASSERT_TRUE(server_->WaitHealthy(*client_)) << "etcd did not become healthy:\n"
                                                << server_->LogTail();
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << "etcd log:\n" << server_->LogTail() << "\n";
  }

  LeaseOptions ShortLease(int64_t ttl = 2) {
    LeaseOptions o;
    o.ttl_seconds = ttl;
    o.margin = 500ms;
    return o;
  }

  std::string bin_;
  std::unique_ptr<EtcdServer> server_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(Etcd, PutGetDeletePrefix) {
  auto rev = client_->Put("/ck/a", std::string("bin\0ary", 7), 0, kCall);
  ASSERT_TRUE(rev.ok()) << rev.status().message();
  ASSERT_TRUE(client_->Put("/ck/b", "", 0, kCall).ok());
  ASSERT_TRUE(client_->Put("/ckz", "outside", 0, kCall).ok());
  auto got = client_->Get("/ck/a", kCall);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, std::string("bin\0ary", 7));
  EXPECT_EQ((*got)->mod_revision, *rev);
  auto prefix = client_->GetPrefix("/ck/", kCall);
  ASSERT_TRUE(prefix.ok()) << prefix.status().message();
  ASSERT_EQ(prefix->kvs.size(), 2u);
  EXPECT_EQ(prefix->kvs[0].key, "/ck/a");
  EXPECT_EQ(prefix->kvs[1].key, "/ck/b");
  EXPECT_EQ(prefix->kvs[1].value, "");
  EXPECT_EQ(*client_->Delete("/ck/a", kCall), 1);
  EXPECT_EQ(*client_->Delete("/ck/a", kCall), 0);
  auto none = client_->Get("/ck/a", kCall);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

// The standby's wait for the leader key: nothing before the timeout while
// the key stays; the deletion (the holder's lease expiring) ends the wait
// at once; a change that happened before the watch began is not missed.
TEST_F(Etcd, WaitForChangeSeesTheKeyGoWhenTheLeaseExpires) {
  const std::string key = "/ck/w/leader";
  auto lease = Lease::Grant(*client_, ShortLease(2), kCall);
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  auto rev = client_->Put(key, "a", lease->id(), kCall);
  ASSERT_TRUE(rev.ok()) << rev.status().message();
  auto quiet = client_->WaitForChange(key, *rev, 300ms);
  ASSERT_TRUE(quiet.ok()) << quiet.status().message();
  EXPECT_FALSE(*quiet) << "a change reported while the key stayed";
  // Nobody renews: etcd expires the lease (2 s) and deletes the key.
  auto t0 = std::chrono::steady_clock::now();
  bool changed = false;
  for (int i = 0; i < 20 && !changed; ++i) {  // a guard against hanging
    auto w = client_->WaitForChange(key, *rev, 1000ms);
    ASSERT_TRUE(w.ok()) << w.status().message();
    changed = *w;
  }
  ASSERT_TRUE(changed) << "the lease's expiry never ended the wait";
  auto gone = client_->Get(key, kCall);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value()) << "woken while the key still exists";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  // The deletion is already history: a watch from the old revision sees it at once.
  auto again = client_->WaitForChange(key, *rev, 5000ms);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(*again);
}

TEST_F(Etcd, WaitForChangeOnAKilledEtcdIsUnreachable) {
  auto rev = client_->Put("/ck/w/x", "v", 0, kCall);
  ASSERT_TRUE(rev.ok());
  server_->Kill();
  auto w = client_->WaitForChange("/ck/w/x", *rev, 500ms);
  ASSERT_FALSE(w.ok());
  EXPECT_TRUE(IsUnreachable(w.status())) << w.status().message();
}

TEST_F(Etcd, LeaseGrantKeepAliveTimeToLiveRevoke) {
  auto lease = Lease::Grant(*client_, ShortLease(5), kCall);
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  EXPECT_NE(lease->id(), 0);
  EXPECT_GE(lease->granted_ttl_seconds(), 5);
  EXPECT_TRUE(lease->CertainlyValid());
  ASSERT_TRUE(client_->Put("/ck/leased", "x", lease->id(), kCall).ok());

  auto ttl = lease->KeepAliveOnce(*client_, kCall);
  ASSERT_TRUE(ttl.ok()) << ttl.status().message();
  EXPECT_EQ(*ttl, lease->granted_ttl_seconds());
  EXPECT_TRUE(lease->CertainlyValid());

  auto info = lease->TimeToLive(*client_, kCall);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_TRUE(info->exists);
  EXPECT_EQ(info->granted_seconds, lease->granted_ttl_seconds());
  EXPECT_LE(info->ttl_seconds, info->granted_seconds);
  EXPECT_EQ(info->keys, std::vector<std::string>{"/ck/leased"});

  ASSERT_TRUE(lease->Revoke(*client_, kCall).ok());
  EXPECT_FALSE(lease->CertainlyValid());
  info = lease->TimeToLive(*client_, kCall);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->exists);
  auto gone = client_->Get("/ck/leased", kCall);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value()) << "a revoked lease's keys are deleted";
  ttl = lease->KeepAliveOnce(*client_, kCall);
  ASSERT_TRUE(ttl.ok()) << ttl.status().message();
  EXPECT_EQ(*ttl, 0) << "keepalive of a revoked lease says it is gone";
  EXPECT_FALSE(lease->CertainlyValid());
  EXPECT_TRUE(lease->Revoke(*client_, kCall).ok()) << "revoking twice is not an error";

  // etcd refuses a put on a lease that does not exist: a refusal, not "unreachable".
  auto put = client_->Put("/ck/leased", "x", lease->id(), kCall);
  ASSERT_FALSE(put.ok());
  EXPECT_FALSE(IsUnreachable(put.status())) << put.status().message();
  EXPECT_NE(put.status().message().find("lease not found"), std::string::npos)
      << put.status().message();
}

TEST_F(Etcd, TwoCampaignersExactlyOneWins) {
  auto other = MakeClient({server_->url()});
  auto la = Lease::Grant(*client_, ShortLease(10), kCall);
  auto lb = Lease::Grant(*other, ShortLease(10), kCall);
  ASSERT_TRUE(la.ok() && lb.ok());
  Result<CampaignResult> ra = Status::Failure("not run");
  Result<CampaignResult> rb = Status::Failure("not run");
  std::thread ta([&] { ra = CampaignOnce(*client_, "/ck/r/leader", "a", la->id(), kCall); });
  std::thread tb([&] { rb = CampaignOnce(*other, "/ck/r/leader", "b", lb->id(), kCall); });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra.ok()) << ra.status().message();
  ASSERT_TRUE(rb.ok()) << rb.status().message();
  EXPECT_NE(ra->won, rb->won) << "exactly one wins";
  const CampaignResult& win = ra->won ? *ra : *rb;
  const CampaignResult& lose = ra->won ? *rb : *ra;
  EXPECT_EQ(win.leader, lose.leader) << "the loser sees the winner";
  EXPECT_EQ(win.leader.lease, ra->won ? la->id() : lb->id());
  EXPECT_GT(win.token(), 0);

  // Campaigning again with the same lease (a lost reply) still counts as won,
  // with the same token.
  int64_t win_lease = win.leader.lease;
  auto again = CampaignOnce(*client_, "/ck/r/leader", win.leader.value, win_lease, kCall);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->won);
  EXPECT_EQ(again->token(), win.token());

  auto leader = GetLeader(*client_, "/ck/r/leader", kCall);
  ASSERT_TRUE(leader.ok() && leader->has_value());
  EXPECT_EQ((*leader)->create_revision, win.token());
}

TEST_F(Etcd, LoserWinsAfterWinnersLeaseExpiresWithAGreaterToken) {
  auto b_client = MakeClient({server_->url()});
  const std::string key = "/ck/r/leader";
  auto a = Lease::Grant(*client_, ShortLease(2), kCall);
  ASSERT_TRUE(a.ok()) << a.status().message();
  auto ca = CampaignOnce(*client_, key, "a", a->id(), kCall);
  ASSERT_TRUE(ca.ok() && ca->won);
  const int64_t token_a = ca->token();

  auto b = Lease::Grant(*b_client, ShortLease(2), kCall);
  ASSERT_TRUE(b.ok());
  // A renews; while its lease certainly holds, B cannot win.
  ASSERT_TRUE(a->KeepAliveOnce(*client_, kCall).ok());
  auto cb = CampaignOnce(*b_client, key, "b", b->id(), kCall);
  ASSERT_TRUE(cb.ok());
  if (a->CertainlyValid()) {
    EXPECT_FALSE(cb->won) << "B won while A certainly held its lease";
  }
  EXPECT_EQ(cb->leader.value, "a");

  // A stops renewing. B keeps its own lease alive and campaigns until it wins.
  bool b_won = false;
  CampaignResult last;
  for (int i = 0; i < 300 && !b_won; ++i) {  // a guard against hanging, not a timing check
    ASSERT_TRUE(b->KeepAliveOnce(*b_client, kCall).ok());
    auto r = CampaignOnce(*b_client, key, "b", b->id(), kCall);
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (r->won) {
      b_won = true;
      last = *r;
      // The order that makes failover safe: by the time B holds the key, A's
      // own clock already says its lease is no longer certainly valid.
      EXPECT_FALSE(a->CertainlyValid()) << "B won while A still counted its lease valid";
    } else {
      EXPECT_EQ(r->leader.value, "a");
      std::this_thread::sleep_for(100ms);
    }
  }
  ASSERT_TRUE(b_won) << "B never won after A's lease expired";
  auto ttl_a = a->TimeToLive(*client_, kCall);
  ASSERT_TRUE(ttl_a.ok());
  EXPECT_FALSE(ttl_a->exists);
  auto renew_a = a->KeepAliveOnce(*client_, kCall);
  ASSERT_TRUE(renew_a.ok());
  EXPECT_EQ(*renew_a, 0) << "A learns its lease is gone";
  const int64_t token_b = last.token();
  EXPECT_GT(token_b, token_a) << "fencing tokens increase across leaders";

  // A cannot resign B's term; B can.
  auto resign_a = Resign(*client_, key, a->id(), token_a, kCall);
  ASSERT_TRUE(resign_a.ok());
  EXPECT_FALSE(*resign_a);
  auto resign_b = Resign(*b_client, key, b->id(), token_b, kCall);
  ASSERT_TRUE(resign_b.ok()) << resign_b.status().message();
  EXPECT_TRUE(*resign_b);
  auto nobody = GetLeader(*client_, key, kCall);
  ASSERT_TRUE(nobody.ok());
  EXPECT_FALSE(nobody->has_value());

  // A third term (A again, new lease) gets a greater token still.
  auto a2 = Lease::Grant(*client_, ShortLease(2), kCall);
  ASSERT_TRUE(a2.ok());
  auto c3 = CampaignOnce(*client_, key, "a", a2->id(), kCall);
  ASSERT_TRUE(c3.ok() && c3->won);
  EXPECT_GT(c3->token(), token_b);
}

TEST_F(Etcd, CompareAndPutStateRecordsUnderTheLeaderGuard) {
  const std::string leader_key = "/ck/r/leader";
  const std::string disk_b = "/ck/r/disk/b";
  auto a = Lease::Grant(*client_, ShortLease(10), kCall);
  ASSERT_TRUE(a.ok());
  auto ca = CampaignOnce(*client_, leader_key, "a", a->id(), kCall);
  ASSERT_TRUE(ca.ok() && ca->won);
  LeaderGuard guard{leader_key, ca->token()};

  auto first = CompareAndPut(*client_, disk_b, "UpToDate", 0, guard, kCall);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(first->succeeded);
  // A second writer that also believed the record absent loses, and sees it.
  auto conflict = CompareAndPut(*client_, disk_b, "Outdated", 0, guard, kCall);
  ASSERT_TRUE(conflict.ok());
  EXPECT_FALSE(conflict->succeeded);
  EXPECT_TRUE(conflict->guard_held);
  ASSERT_TRUE(conflict->current.has_value());
  EXPECT_EQ(conflict->current->value, "UpToDate");
  EXPECT_EQ(conflict->current->mod_revision, first->revision);
  // With the revision it read, it succeeds.
  auto second = CompareAndPut(*client_, disk_b, "Outdated", first->revision, guard, kCall);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->succeeded);
  EXPECT_GT(second->revision, first->revision);

  // A deposed leader (its term resigned) cannot write the record.
  ASSERT_TRUE(*Resign(*client_, leader_key, a->id(), ca->token(), kCall));
  auto stale = CompareAndPut(*client_, disk_b, "UpToDate", second->revision, guard, kCall);
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->succeeded);
  EXPECT_FALSE(stale->guard_held);
  auto rec = client_->Get(disk_b, kCall);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->value, "Outdated");
  // Unguarded compare-and-put on a record that exists, expecting it absent.
  auto unguarded = CompareAndPut(*client_, disk_b, "x", 0, std::nullopt, kCall);
  ASSERT_TRUE(unguarded.ok());
  EXPECT_FALSE(unguarded->succeeded);
}

TEST_F(Etcd, KilledEtcdIsUnreachableThenRestartedOnItsDataDir) {
  auto rev = client_->Put("/ck/persist", "v1", 0, kCall);
  ASSERT_TRUE(rev.ok());
  auto lease = Lease::Grant(*client_, ShortLease(10), kCall);
  ASSERT_TRUE(lease.ok());
  auto won = CampaignOnce(*client_, "/ck/r/leader", "a", lease->id(), kCall);
  ASSERT_TRUE(won.ok() && won->won);
  const TimePoint valid_until = lease->valid_until();

  server_->Kill();
  constexpr Timeout kShort = 1000ms;
  auto get = client_->Get("/ck/persist", kShort);
  ASSERT_FALSE(get.ok());
  EXPECT_TRUE(IsUnreachable(get.status())) << get.status().message();
  auto put = client_->Put("/ck/persist", "v2", 0, kShort);
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(IsUnreachable(put.status())) << put.status().message();
  auto camp = CampaignOnce(*client_, "/ck/r/leader", "a", lease->id(), kShort);
  ASSERT_FALSE(camp.ok());
  EXPECT_TRUE(IsUnreachable(camp.status())) << camp.status().message();
  auto ka = lease->KeepAliveOnce(*client_, kShort);
  ASSERT_FALSE(ka.ok());
  EXPECT_TRUE(IsUnreachable(ka.status())) << ka.status().message();
  EXPECT_EQ(lease->valid_until(), valid_until) << "a failed renewal proves nothing";
  auto grant = Lease::Grant(*client_, ShortLease(10), kShort);
  ASSERT_FALSE(grant.ok());
  EXPECT_TRUE(IsUnreachable(grant.status())) << grant.status().message();
  EXPECT_FALSE(client_->Health(kShort).ok());

  ASSERT_NO_FATAL_FAILURE(server_->Start());
  ASSERT_TRUE(server_->WaitHealthy(*client_)) << server_->LogTail();
  get = client_->Get("/ck/persist", kCall);
  ASSERT_TRUE(get.ok()) << get.status().message();
  ASSERT_TRUE(get->has_value());
  EXPECT_EQ((*get)->value, "v1");
  EXPECT_EQ((*get)->mod_revision, *rev);
  put = client_->Put("/ck/persist", "v2", 0, kCall);
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_GT(*put, *rev);
  // The lease survived the restart (etcd renews every lease to its full TTL
  // when a leader takes over), and so did the leadership.
  ka = lease->KeepAliveOnce(*client_, kCall);
  ASSERT_TRUE(ka.ok()) << ka.status().message();
  EXPECT_GT(*ka, 0);
  camp = CampaignOnce(*client_, "/ck/r/leader", "a", lease->id(), kCall);
  ASSERT_TRUE(camp.ok());
  EXPECT_TRUE(camp->won);
  EXPECT_EQ(camp->token(), won->token());
}

TEST_F(Etcd, RefusingEndpointListedFirstIsSkipped) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(FreePort());
  auto c = MakeClient({dead, server_->url()});
  auto put = c->Put("/ck/k", "v", 0, kCall);
  ASSERT_TRUE(put.ok()) << put.status().message();
  auto get = c->Get("/ck/k", kCall);
  ASSERT_TRUE(get.ok() && get->has_value());
  auto lease = Lease::Grant(*c, ShortLease(5), kCall);
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  auto camp = CampaignOnce(*c, "/ck/r/leader", "a", lease->id(), kCall);
  ASSERT_TRUE(camp.ok() && camp->won);

  // Only dead endpoints: unreachable, never success.
  auto none = MakeClient({dead, "http://127.0.0.1:" + std::to_string(FreePort())});
  auto r = none->Put("/ck/k", "v", 0, kCall);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsUnreachable(r.status())) << r.status().message();
}

TEST_F(Etcd, SilentEndpointTimesOutAndWritesAreNotResent) {
  SilentListener silent;
  // A write sent to an endpoint that never answers: unknown outcome, and not
  // sent again to the next endpoint (it could have been applied).
  auto c = MakeClient({silent.url(), server_->url()});
  auto put = c->Put("/ck/k", "v", 0, 1000ms);
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(IsUnreachable(put.status())) << put.status().message();
  auto check = client_->Get("/ck/k", kCall);
  ASSERT_TRUE(check.ok());
  EXPECT_FALSE(check->has_value()) << "the write went to the second endpoint as well";
  // A read is repeatable: it moves on to the next endpoint within its timeout.
  auto get = c->Get("/ck/k", kCall);
  ASSERT_TRUE(get.ok()) << get.status().message();
}

TEST_F(Etcd, AuthenticationAndReauthenticationWhenTheTokenIsRevoked) {
  auto call = [&](const char* path, nlohmann::json body) {
    auto r = client_->Call(path, body, false, kCall);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status().message();
  };
  call("/v3/auth/user/add", {{"name", "root"}, {"password", "s3cret"}});
  call("/v3/auth/role/add", {{"name", "root"}});
  call("/v3/auth/user/grant", {{"user", "root"}, {"role", "root"}});
  call("/v3/auth/enable", nlohmann::json::object());

  auto anon = client_->Put("/ck/k", "v", 0, kCall);
  ASSERT_FALSE(anon.ok());
  EXPECT_FALSE(IsUnreachable(anon.status())) << anon.status().message();
  auto wrong = MakeClient({server_->url()}, "root", "wrong");
  auto w = wrong->Put("/ck/k", "v", 0, kCall);
  ASSERT_FALSE(w.ok());
  EXPECT_FALSE(IsUnreachable(w.status())) << w.status().message();

  auto root = MakeClient({server_->url()}, "root", "s3cret");
  auto put = root->Put("/ck/k", "v", 0, kCall);
  ASSERT_TRUE(put.ok()) << put.status().message();
  // Changing a password invalidates the user's tokens (as their expiry does,
  // --auth-token-ttl): the client's next call is refused with "invalid auth
  // token" and the client authenticates again by itself.
  auto changed = root->Call("/v3/auth/user/changepw", {{"name", "root"}, {"password", "s3cret"}},
                            false, kCall);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  auto get = root->Get("/ck/k", kCall);
  ASSERT_TRUE(get.ok()) << get.status().message();
  ASSERT_TRUE(get->has_value());
  EXPECT_EQ((*get)->value, "v");
}

TEST_F(Etcd, TlsWithClientCertificates) {
  EtcdServer tls(bin_);
  ASSERT_FALSE(tls.dir().empty());
  const std::string certs = tls.dir();
  const std::string made = MakeCertificates(certs);
  ASSERT_EQ(made, "") << "openssl";
  tls.UseTls(certs);
  ASSERT_NO_FATAL_FAILURE(tls.Start());

  EtcdOptions o;
  o.endpoints = {tls.url()};
  o.ca_file = certs + "/ca.crt";
  o.cert_file = certs + "/client.crt";
  o.key_file = certs + "/client.key";
  auto c = EtcdClient::Create(o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_TRUE(tls.WaitHealthy(**c)) << tls.LogTail();
  auto put = (*c)->Put("/ck/tls", "v", 0, kCall);
  ASSERT_TRUE(put.ok()) << put.status().message();
  auto lease = Lease::Grant(**c, ShortLease(5), kCall);
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  auto camp = CampaignOnce(**c, "/ck/r/leader", "a", lease->id(), kCall);
  ASSERT_TRUE(camp.ok() && camp->won);

  // Without a client certificate, or trusting another CA: no success, and
  // "unreachable" (no etcd this client can trust answered), not a refusal.
  EtcdOptions anon = o;
  anon.cert_file.clear();
  anon.key_file.clear();
  auto a = EtcdClient::Create(anon);
  ASSERT_TRUE(a.ok());
  auto r = (*a)->Put("/ck/tls", "x", 0, kCall);
  EXPECT_TRUE(IsUnreachable(r.status())) << r.status().message();
  EtcdOptions other_ca = o;
  other_ca.ca_file = certs + "/client.crt";  // not the CA that signed the server
  auto b = EtcdClient::Create(other_ca);
  ASSERT_TRUE(b.ok());
  r = (*b)->Put("/ck/tls", "x", 0, kCall);
  EXPECT_TRUE(IsUnreachable(r.status())) << r.status().message();
  auto still = (*c)->Get("/ck/tls", kCall);
  ASSERT_TRUE(still.ok() && still->has_value());
  EXPECT_EQ((*still)->value, "v");
}

}  // namespace
}  // namespace cloudkeep::coord
