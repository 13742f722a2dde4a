#include "mirror/fencing.h"

#include <fmt/format.h>

#include <chrono>

#include "core/log.h"
#include "core/subprocess.h"
#include "mirror/generation.h"

namespace cloudkeep::mirror {

namespace {

double MonoSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::chrono::milliseconds Ms(Micros d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

std::string RecordState(const std::optional<coord::KeyValue>& kv) {
  if (!kv) return "";
  Json j = Json::parse(kv->value, nullptr, false);
  if (!j.is_object()) return "?";
  return j.value("state", "?");
}

}  // namespace

Fencer::Fencer(const ResourceConfig& cfg, std::string node, FencingHost* host)
    : cfg_(cfg), node_(std::move(node)), host_(host) {
  peer_ = cfg_.PeerOf(node_)->name;
  tag_ = cfg_.name + "/" + node_;
  leader_key_ = cfg_.etcd_prefix + "/" + cfg_.name + "/leader";
  timeout_ = Ms(cfg_.etcd_timeout);
}

Result<std::unique_ptr<Fencer>> Fencer::Create(const ResourceConfig& cfg, const std::string& node,
                                               FencingHost* host, const Clock* clock) {
  std::unique_ptr<Fencer> f(new Fencer(cfg, node, host));
  if (clock != nullptr) f->clock_ = clock;
  if (!cfg.service_address.empty())
    f->address_ = MakeInterfaceAddress(cfg.service_address, cfg.service_interface, f->tag_);
  coord::EtcdOptions o;
  o.endpoints = cfg.etcd_endpoints;
  o.connect_timeout = std::min(f->timeout_, std::chrono::milliseconds(1000));
  o.ca_file = cfg.etcd_ca;
  o.cert_file = cfg.etcd_cert;
  o.key_file = cfg.etcd_key;
  CK_ASSIGN_OR_RETURN(f->etcd_, coord::EtcdClient::Create(std::move(o)));
  return f;
}

Fencer::~Fencer() {
  Stop();
}

void Fencer::Start() {
  // A crash may have left the address on this host: only a leader holds it.
  DropAddress();
  thread_ = std::thread([this] { Loop(); });
}

void Fencer::Stop() {
  if (stopping_.exchange(true)) return;
  {
    // Every BeforeAck decides under mu_: once it is held here, none can
    // approve another change, so the line closes this node's acknowledging
    // interval (the failover tests read it), before the key is given up.
    std::lock_guard lk(mu_);
    if (leader_) Event("gave the leader key up (stopping: nothing is acknowledged from now on)");
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lk(hook_mu_);
    if (hook_.joinable()) hook_.join();
  }
  // A clean stop gives the key up at once, so that the peer need not wait
  // for the lease to expire (the host has stopped the export already).
  std::optional<coord::Lease> lease;
  {
    std::lock_guard lk(mu_);
    lease = lease_;
    lease_.reset();
    leader_ = false;
  }
  DropAddress();
  if (lease) (void)lease->Revoke(*etcd_, timeout_);
}

std::string Fencer::DiskKey(const std::string& node) const {
  return cfg_.etcd_prefix + "/" + cfg_.name + "/disk/" + node;
}

void Fencer::Event(const std::string& what) {
  log::Info("mirror {}: fencing: {} (t={:.3f})", tag_, what, MonoSeconds());
}

bool Fencer::LeaseValid() const {
  return lease_ && lease_->CertainlyValid();
}

// ---- the loop ----------------------------------------------------------------

void Fencer::Loop() {
  int64_t woke_at = 0;  // the mod_revision whose change last ended a wait early
  while (!stopping_) {
    auto t0 = std::chrono::steady_clock::now();
    Round();
    const auto next = t0 + cfg_.renew_interval;
    int64_t watch_from = 0;
    {
      std::lock_guard lk(mu_);
      if (!leader_ && !holder_.empty() && holder_ != node_) watch_from = holder_mod_revision_;
    }
    // Another node leads: wait for its key to change (its lease expired, it
    // resigned) instead of sleeping, and start the next round at once, so
    // that the campaign follows the expiry by one etcd request instead of
    // up to a renew_interval. The lease is still renewed every round. Once
    // per revision: a change that did not end the term (a spurious wake)
    // falls back to the plain wait.
    if (watch_from > 0 && watch_from != woke_at) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          next - std::chrono::steady_clock::now());
      if (left > std::chrono::milliseconds(5)) {
        auto changed = etcd_->WaitForChange(leader_key_, watch_from, left);
        if (changed.ok() && *changed) {
          woke_at = watch_from;
          continue;
        }
      }
    }
    std::unique_lock lk(mu_);
    cv_.wait_until(lk, next, [&] { return stopping_.load(); });
  }
}

void Fencer::Round() {
  {
    // Logged once per lapse, stamped with the moment acknowledgements
    // stopped (the end of the validity), not the moment it is noticed.
    std::lock_guard lk(mu_);
    bool valid = LeaseValid();
    if (leader_ && !valid && !lapse_logged_) {
      double until =
          lease_ ? std::chrono::duration<double>(lease_->valid_until().time_since_epoch()).count()
                 : MonoSeconds();
      log::Warn(
          "mirror {}: fencing: suspended: the lease is no longer certainly valid ({}); no "
          "write or flush is acknowledged until it is renewed (t={:.3f})",
          tag_, etcd_ok_ ? "not renewed in time" : "etcd unreachable: " + etcd_error_, until);
      lapse_logged_ = true;
    } else if (lapse_logged_ && (valid || !leader_)) {
      // Only a leader resumes: a node whose term ended meanwhile (a new
      // lease, no key) must not log it (the failover tests read these lines).
      if (leader_) Event("the lease is certainly valid again: resuming");
      lapse_logged_ = false;
    }
  }
  bool fresh = false;
  if (!EnsureLease(&fresh)) return;
  if (!fresh && !RenewLease()) return;
  CheckLeader();
  if (stopping_) return;
  if (leader_) {
    ReconcileRecords();
  } else {
    FencingView v = host_->View();
    Campaign(v);
  }
}

bool Fencer::EnsureLease(bool* fresh) {
  {
    std::lock_guard lk(mu_);
    if (lease_) return true;
  }
  coord::LeaseOptions lo;
  lo.ttl_seconds = cfg_.lease_ttl.count() / 1'000'000;
  lo.margin = Ms(cfg_.suspend_margin);
  lo.clock = clock_;
  auto l = coord::Lease::Grant(*etcd_, lo, timeout_);
  std::lock_guard lk(mu_);
  if (!l.ok()) {
    if (etcd_error_ != l.status().message())
      log::Warn("mirror {}: fencing: etcd: {}", tag_, l.status().message());
    etcd_error_ = l.status().message();
    etcd_ok_ = false;
    return false;
  }
  lease_ = *l;
  etcd_ok_ = true;
  etcd_error_.clear();
  *fresh = true;
  return true;
}

bool Fencer::RenewLease() {
  int64_t id;
  {
    std::lock_guard lk(mu_);
    id = lease_->id();
  }
  const TimePoint sent = clock_->Now();
  auto ttl = etcd_->LeaseKeepAliveOnce(id, timeout_);
  bool lost = false;
  {
    std::lock_guard lk(mu_);
    if (!ttl.ok()) {
      if (etcd_ok_ || etcd_error_ != ttl.status().message())
        log::Warn("mirror {}: fencing: cannot renew the lease: {}", tag_, ttl.status().message());
      etcd_error_ = ttl.status().message();
      etcd_ok_ = false;
      cv_.notify_all();
      return false;
    }
    if (!etcd_ok_) Event("etcd reachable again");
    etcd_ok_ = true;
    etcd_error_.clear();
    if (lease_ && lease_->id() == id) lease_->RecordRenewal(sent, *ttl);
    // Stamped here, under mu_, before any BeforeAck can see the renewed
    // lease: the log line opens this node's acknowledging interval again
    // (the randomized failover test checks those intervals never overlap).
    if (leader_ && lapse_logged_ && LeaseValid()) {
      Event("the lease is certainly valid again: resuming");
      lapse_logged_ = false;
    }
    if (*ttl == 0) {
      lease_.reset();
      lost = leader_;
    }
    cv_.notify_all();
  }
  if (lost) LoseLeadership("the lease expired in etcd");
  return !lost && ttl.ok() && *ttl > 0;
}

void Fencer::CheckLeader() {
  auto kv = coord::GetLeader(*etcd_, leader_key_, timeout_);
  if (!kv.ok()) return;
  std::string holder;
  int64_t tok = 0, lease_id = 0, mod = 0;
  if (*kv) {
    Json j = Json::parse((*kv)->value, nullptr, false);
    holder = j.is_object() ? j.value("node", "?") : "?";
    tok = (*kv)->create_revision;
    lease_id = (*kv)->lease;
    mod = (*kv)->mod_revision;
  }
  bool lost = false;
  {
    std::lock_guard lk(mu_);
    // When the key's holder goes (its lease expired or it resigned), as this
    // node saw it: bench/failover.sh splits lease expiry from the campaign.
    if (holder.empty() && !holder_.empty() && holder_ != node_)
      Event("the leader key is free (" + holder_ + "'s term ended)");
    holder_ = holder;
    holder_token_ = tok;
    holder_mod_revision_ = mod;
    if (leader_ &&
        (!lease_ || lease_id != lease_->id() || tok != static_cast<int64_t>(token_.load())))
      lost = true;
  }
  if (lost) {
    LoseLeadership(holder.empty()
                       ? "the leader key is gone"
                       : fmt::format("the leader key is held by {} (token {})", holder, tok));
    return;
  }
  if (!holder.empty() && holder != node_ && tok > 0)
    host_->ObserveToken(static_cast<uint64_t>(tok));
}

void Fencer::Campaign(const FencingView& v) {
  std::string why_not;
  bool force;
  {
    std::lock_guard lk(mu_);
    force = force_campaign_;
    if (paused_) why_not = "demoted by the operator: no campaign until 'mirror promote'";
    if (!holder_.empty() && holder_ != node_) why_not = "the leader is " + holder_;
  }
  if (why_not.empty() && v.disk_state != "UpToDate" && !force)
    why_not = "this copy is " + v.disk_state;
  if (why_not.empty() && v.resync_running) why_not = "a resync is running";
  // The records: UpToDate for this node, or none at all (a new resource).
  if (why_not.empty()) {
    auto recs = etcd_->GetPrefix(cfg_.etcd_prefix + "/" + cfg_.name + "/disk/", timeout_);
    if (!recs.ok()) return;
    std::string mine;
    for (const auto& kv : recs->kvs)
      if (kv.key == DiskKey(node_)) mine = RecordState(kv);
    {
      std::lock_guard lk(mu_);
      self_record_ = mine;
    }
    if (!force && !recs->kvs.empty() && mine != "UpToDate")
      why_not = "etcd records this copy as " + (mine.empty() ? std::string("unknown") : mine) +
                ": it may lack acknowledged writes ('mirror promote --force' to override)";
  }
  if (!why_not.empty()) {
    std::lock_guard lk(mu_);
    if (why_not != last_campaign_note_ && why_not.rfind("the leader is", 0) != 0)
      log::Info("mirror {}: fencing: not campaigning: {}", tag_, why_not);
    last_campaign_note_ = why_not;
    return;
  }
  int64_t lease_id;
  {
    std::lock_guard lk(mu_);
    if (!lease_) return;
    lease_id = lease_->id();
  }
  const NodeConfig* self = cfg_.FindNode(node_);
  Json value{{"node", node_}, {"address", self ? self->address : ""}};
  auto r = coord::CampaignOnce(*etcd_, leader_key_, value.dump(), lease_id, timeout_);
  if (!r.ok() || !r->won) return;
  const uint64_t tok = static_cast<uint64_t>(r->token());
  {
    std::lock_guard lk(mu_);
    token_ = tok;
    leader_ = true;
    holder_ = node_;
    holder_token_ = r->token();
    force_campaign_ = false;
    last_campaign_note_.clear();
    first_ack_pending_ = true;
  }
  Event(fmt::format("won the leader key (token {}){}", tok, force ? " by promote --force" : ""));
  host_->ObserveToken(tok);
  // A deposed primary still connected (its etcd is gone, ours is not): it
  // cannot acknowledge anything (its lease has lapsed), and it must not
  // keep this node as its standby.
  FencingView now = host_->View();
  if (now.peer_connected && now.peer_role == "Primary")
    host_->DropPeerLink(fmt::format("this node holds the leader key (token {})", tok));
  // A primary its clients cannot reach serves no one, and holding the key
  // keeps the peer from trying: give it up and campaign again next round.
  if (Status a = TakeAddress(); !a.ok()) {
    log::Error("mirror {}: fencing: cannot take the service address: {}; giving the key up", tag_,
               a.message());
    LoseLeadership("could not take the service address");
    return;
  }
  std::vector<std::string> notes;
  Status s = host_->PromoteElected(tok, &notes);
  for (auto& n : notes) log::Warn("mirror {}: {}", tag_, n);
  if (!s.ok()) {
    log::Error("mirror {}: fencing: promotion failed: {}; giving the key up", tag_, s.message());
    LoseLeadership("promotion failed");
    return;
  }
  Event(fmt::format("promoted: primary with token {}", tok));
  (void)PutRecord(node_, "UpToDate", host_->View().generation);
  RunHook(tok);
}

void Fencer::ReconcileRecords() {
  // This node's own record, once per term.
  bool self_ok;
  {
    std::lock_guard lk(mu_);
    self_ok = self_record_ == "UpToDate";
  }
  if (!self_ok) (void)PutRecord(node_, "UpToDate", host_->View().generation);
  // The peer: recorded UpToDate again once it is connected and in sync.
  std::lock_guard rk(rec_mu_);
  FencingView v = host_->View();
  if (!(v.peer_connected && v.peer_disk == "UpToDate" && !v.resync_running)) return;
  {
    std::lock_guard lk(mu_);
    if (peer_record_ == "UpToDate") return;
    // From now on a change the peer lacks needs a new Outdated record first:
    // this put may land.
    peer_not_uptodate_ = false;
  }
  auto cur = ReadRecord(peer_);
  if (!cur.ok()) return;
  if (RecordState(*cur) == "UpToDate") {
    std::lock_guard lk(mu_);
    peer_record_ = "UpToDate";
    return;
  }
  Json j{{"state", "UpToDate"},
         {"generation", FormatGeneration(v.generation)},
         {"by", node_},
         {"token", token_.load()}};
  auto r = coord::CompareAndPut(
      *etcd_, DiskKey(peer_), j.dump(), *cur ? (*cur)->mod_revision : 0,
      coord::LeaderGuard{leader_key_, static_cast<int64_t>(token_.load())}, timeout_);
  if (r.ok() && r->succeeded) {
    std::lock_guard lk(mu_);
    peer_record_ = "UpToDate";
    Event("recorded " + peer_ + " UpToDate in etcd");
  }
}

Result<std::optional<coord::KeyValue>> Fencer::ReadRecord(const std::string& node) {
  return etcd_->Get(DiskKey(node), timeout_);
}

Status Fencer::PutRecord(const std::string& node, const std::string& state, uint64_t generation) {
  std::lock_guard rk(rec_mu_);
  CK_ASSIGN_OR_RETURN(auto cur, ReadRecord(node));
  Json j{{"state", state},
         {"generation", FormatGeneration(generation)},
         {"by", node_},
         {"token", token_.load()}};
  CK_ASSIGN_OR_RETURN(
      coord::CasResult r,
      coord::CompareAndPut(*etcd_, DiskKey(node), j.dump(), cur ? cur->mod_revision : 0,
                           coord::LeaderGuard{leader_key_, static_cast<int64_t>(token_.load())},
                           timeout_));
  if (!r.succeeded)
    return Status::Failure(r.guard_held ? "the record changed meanwhile"
                                        : "this node no longer holds the leader key");
  std::lock_guard lk(mu_);
  if (node == node_) self_record_ = state;
  if (node == peer_) peer_record_ = state;
  return Status::Ok();
}

Status Fencer::OutdatePeer() {
  uint64_t gen = host_->View().generation;
  Status s = PutRecord(peer_, "Outdated", gen);
  if (!s.ok()) return s;
  Event("recorded " + peer_ + " Outdated in etcd: acknowledging writes without it");
  host_->StartDivergence();
  return Status::Ok();
}

void Fencer::LoseLeadership(const std::string& why) {
  {
    std::lock_guard lk(mu_);
    if (!leader_) return;
    leader_ = false;
    cv_.notify_all();
  }
  Event("lost the leader key: " + why + "; demoting");
  host_->DemoteFenced(why);
  DropAddress();
  ForgetTerm();
}

void Fencer::ForgetTerm() {
  std::lock_guard lk(mu_);
  token_ = 0;
  self_record_.clear();
  peer_record_.clear();
  peer_not_uptodate_ = false;
}

// ---- the service address and the hook -------------------------------------------

void Fencer::UseServiceAddress(std::unique_ptr<ServiceAddress> address) {
  std::lock_guard lk(addr_mu_);
  address_ = std::move(address);
}

Status Fencer::TakeAddress() {
  std::lock_guard lk(addr_mu_);
  if (!address_) return Status::Ok();
  CK_RETURN_IF_ERROR(address_->Take());
  Event("took the service address " + address_->Describe());
  return Status::Ok();
}

void Fencer::DropAddress() {
  std::lock_guard lk(addr_mu_);
  if (address_ && address_->Release()) Event("removed the service address " + address_->Describe());
}

void Fencer::RunHook(uint64_t token) {
  std::lock_guard lk(hook_mu_);
  if (hook_.joinable()) hook_.join();
  hook_ = std::thread([this, token] {
    if (cfg_.on_promote.empty()) return;
    std::vector<std::string> argv{cfg_.on_promote};
    argv.insert(argv.end(), cfg_.on_promote_args.begin(), cfg_.on_promote_args.end());
    SubprocessOptions o;
    o.timeout = Micros(60'000'000);
    o.extra_env = {"RESOURCE=" + cfg_.name, "NODE=" + node_, "TOKEN=" + std::to_string(token)};
    auto r = RunProcess(argv, o);
    if (!r.ok())
      log::Error("mirror {}: on_promote {}: {}", tag_, cfg_.on_promote, r.status().message());
    else if (!r->success())
      log::Error("mirror {}: on_promote {} {}: {}", tag_, cfg_.on_promote, r->Describe(),
                 r->output);
    else
      log::Info("mirror {}: on_promote {} done", tag_, cfg_.on_promote);
  });
}

// ---- the data path ---------------------------------------------------------------

Status Fencer::BeforeAck(bool replicated) {
  std::unique_lock lk(mu_);
  bool counted = false;
  auto wait = [&](const std::string& reason, Micros d) {
    if (!counted) {
      gate_waiters_++;
      counted = true;
    }
    if (gate_reason_ != reason) {
      gate_reason_ = reason;
      log::Warn("mirror {}: fencing: I/O suspended: {} (t={:.3f})", tag_, reason, MonoSeconds());
      suspended_logged_ = true;
    }
    cv_.wait_for(lk, d);
  };
  auto done = [&](Status s) {
    if (s.ok() && first_ack_pending_) {
      first_ack_pending_ = false;
      Event(fmt::format("first change acknowledged in this term (token {})", token_.load()));
    }
    if (counted && --gate_waiters_ == 0 && s.ok() && suspended_logged_) {
      log::Info("mirror {}: fencing: I/O resumed (t={:.3f})", tag_, MonoSeconds());
      gate_reason_.clear();
      suspended_logged_ = false;
    }
    if (counted && gate_waiters_ == 0 && !s.ok()) gate_reason_.clear();
    return s;
  };
  while (true) {
    if (stopping_ || !leader_) {
      // The host shuts the export's connections down as it demotes; answer
      // after that, so that the client sees the connection end (and
      // reconnects to the new primary) rather than an I/O error.
      lk.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      lk.lock();
      return done(Status::Failure("this node is no longer the primary (fenced)"));
    }
    if (!LeaseValid()) {
      wait(etcd_ok_ ? "the lease is not certainly valid"
                    : "the lease is not certainly valid: etcd unreachable (" + etcd_error_ + ")",
           Micros(20'000));
      continue;
    }
    if (replicated || peer_not_uptodate_) return done(Status::Ok());
    if (cfg_.on_standby_loss == StandbyLoss::kSuspend) {
      lk.unlock();
      FencingView v = host_->View();
      lk.lock();
      // Back and resynced: the change is on the standby now.
      if (v.peer_connected && v.peer_disk == "UpToDate" && !v.resync_running)
        return done(Status::Ok());
      wait("the standby " + peer_ +
               " is gone and on_standby_loss = \"suspend\": writes wait for it (or 'mirror promote "
               "--force' to continue alone, 'mirror demote')",
           Micros(50'000));
      continue;
    }
    if (outdating_) {
      cv_.wait_for(lk, std::chrono::milliseconds(20));
      continue;
    }
    outdating_ = true;
    lk.unlock();
    Status s = OutdatePeer();
    lk.lock();
    outdating_ = false;
    cv_.notify_all();
    if (s.ok()) {
      peer_not_uptodate_ = true;
      continue;
    }
    wait("the standby " + peer_ + " is gone and cannot be recorded Outdated in etcd (" +
             s.message() + "): writes wait",
         cfg_.renew_interval);
  }
}

// ---- control -----------------------------------------------------------------------

Status Fencer::ManualPromote(bool force, std::vector<std::string>* notes) {
  FencingView v = host_->View();
  if (leader_) {
    // A primary suspended by on_standby_loss = "suspend": continue alone.
    if (force && v.primary && !v.peer_connected && cfg_.on_standby_loss == StandbyLoss::kSuspend) {
      Status s = OutdatePeer();
      if (!s.ok()) return Status::Failure("cannot record " + peer_ + " Outdated: " + s.message());
      std::lock_guard lk(mu_);
      peer_not_uptodate_ = true;
      cv_.notify_all();
      notes->push_back("--force: continuing without the standby " + peer_ +
                       ", which is recorded Outdated in etcd (on_standby_loss = \"suspend\" "
                       "applies again once it is back in sync)");
    }
    return Status::Ok();
  }
  std::string holder;
  int64_t htok;
  {
    std::lock_guard lk(mu_);
    holder = holder_;
    htok = holder_token_;
    paused_ = false;
  }
  if (!force) {
    std::string why =
        holder.empty() || holder == node_
            ? "nobody holds the leader key; this node campaigns by itself when its "
              "copy is UpToDate in etcd" +
                  (last_campaign_note_.empty() ? std::string()
                                               : " (now: " + last_campaign_note_ + ")")
            : fmt::format("the leader key is held by {} (token {})", holder, htok);
    return Status::Usage("refusing to promote " + tag_ +
                         " by hand: fencing = \"etcd\" elects the primary, and this node does not "
                         "hold the leader key: " +
                         why + " (--force to campaign despite etcd's records)");
  }
  std::string record;
  {
    std::lock_guard lk(mu_);
    record = self_record_.empty() ? std::string("unknown") : self_record_;
  }
  notes->push_back(
      "promote --force: campaigning for the leader key although etcd records this "
      "copy as " +
      record + " (local: " + v.disk_state +
      "): writes acknowledged by the other node since it was outdated are lost");
  {
    std::lock_guard lk(mu_);
    force_campaign_ = true;
    cv_.notify_all();
  }
  // Wait for the key: up to a lease TTL (a dead holder's lease expires) and two rounds.
  auto until = std::chrono::steady_clock::now() + cfg_.lease_ttl + 2 * cfg_.renew_interval +
               std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < until && !stopping_) {
    if (leader_ && host_->View().primary) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  {
    std::lock_guard lk(mu_);
    force_campaign_ = false;
    holder = holder_;
    htok = holder_token_;
  }
  return Status::Failure(fmt::format(
      "could not take the leader key within {}: {}", FormatDuration(cfg_.lease_ttl),
      holder.empty() ? "etcd: " + etcd_error_
                     : fmt::format("held by {} (token {}), whose lease is being renewed: demote it "
                                   "first",
                                   holder, htok)));
}

void Fencer::StopAcknowledging() {
  std::lock_guard lk(mu_);
  paused_ = true;
  if (leader_) resign_pending_ = true;
  leader_ = false;
  cv_.notify_all();
}

void Fencer::ManualDemote() {
  StopAcknowledging();
  std::optional<coord::Lease> lease;
  {
    std::lock_guard lk(mu_);
    if (!resign_pending_) return;
    resign_pending_ = false;
    lease = lease_;
  }
  DropAddress();
  uint64_t tok = token_.load();
  if (lease) {
    auto r = coord::Resign(*etcd_, leader_key_, lease->id(), static_cast<int64_t>(tok), timeout_);
    Event(r.ok() && *r ? "gave the leader key up (demote)"
                       : "demote: could not delete the leader key; it expires with the lease");
  }
  ForgetTerm();
}

Json Fencer::StatusJson() {
  std::lock_guard lk(mu_);
  Json j;
  j["mode"] = "etcd";
  j["leader"] = holder_.empty() ? Json() : Json(holder_);
  j["token"] = holder_token_;
  j["this_node_leads"] = leader_.load();
  j["lease_id"] = lease_ ? lease_->id() : 0;
  j["lease_ttl_seconds"] = lease_ ? lease_->granted_ttl_seconds() : 0;
  j["lease_remaining_ms"] = lease_ ? lease_->Remaining().count() : 0;
  j["lease_certainly_valid"] = LeaseValid();
  j["etcd_reachable"] = etcd_ok_;
  if (!etcd_error_.empty()) j["etcd_error"] = etcd_error_;
  if (!self_record_.empty()) j["record"] = self_record_;
  if (!peer_record_.empty()) j["peer_record"] = peer_record_;
  if (!last_campaign_note_.empty() && !leader_) j["not_campaigning"] = last_campaign_note_;
  std::string reason;
  if (gate_waiters_ > 0) reason = gate_reason_;
  if (reason.empty() && leader_ && !LeaseValid())
    reason = etcd_ok_ ? "the lease is not certainly valid"
                      : "the lease is not certainly valid: etcd unreachable";
  j["suspended"] = !reason.empty();
  if (!reason.empty()) j["suspended_reason"] = reason;
  return j;
}

}  // namespace cloudkeep::mirror
