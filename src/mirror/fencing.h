// Fencer: fenced automatic failover through etcd (fencing = "etcd", issue 13;
// docs/mirror.md, "Fencing and automatic failover").
//
// One thread per node (the fencing loop) holds a lease in etcd and renews
// it every renew_interval. Between rounds a node that does not lead watches
// the leader key (etcd's watch), so that it campaigns the moment the
// holder's term ends rather than at its next round. A node whose copy is UpToDate — locally and in
// etcd's record PREFIX/RESOURCE/disk/NODE — campaigns for the leader key
// PREFIX/RESOURCE/leader under that lease; the winner takes the service
// address, promotes itself (FencingHost::PromoteElected) and runs the
// on_promote hook. The leader key's create_revision is the fencing token,
// stamped in every frame the primary sends.
//
// The data path asks BeforeAck() before it answers a client write, zero or
// flush. It blocks (the client sees latency, not an error) while the lease
// is not certainly valid (sent + TTL - margin, coord/lease.h), and, for a
// change the standby did not acknowledge, until the standby is recorded
// Outdated in etcd (on_standby_loss = "continue") or is back in sync
// ("suspend"). It fails only when this node is no longer the primary: the
// key was lost, so the export is being stopped and nobody reads the answer.
//
// Lock order: the host never calls the Fencer while holding its own state
// mutex; the Fencer calls the host (View, PromoteElected, …) without
// holding its own.
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coord/election.h"
#include "coord/etcd_client.h"
#include "coord/lease.h"
#include "core/output.h"
#include "core/status.h"
#include "mirror/config.h"
#include "mirror/service_address.h"

namespace cloudkeep::mirror {

// What the fencing loop needs to know about the node, at one moment.
struct FencingView {
  bool primary = false;
  std::string disk_state;  // "UpToDate", "Outdated", "Inconsistent", "SyncSource", "SyncTarget"
  bool peer_connected = false;
  std::string peer_role;  // "Primary", "Secondary", "Unknown"
  std::string peer_disk;  // the peer's disk state as it last reported it
  bool resync_running = false;
  uint64_t generation = 0;
};

class FencingHost {
 public:
  virtual ~FencingHost() = default;
  virtual FencingView View() = 0;
  // This node won the leader key with `token`: become primary and start the export.
  virtual Status PromoteElected(uint64_t token, std::vector<std::string>* notes) = 0;
  // The key is lost (or given up): stop the export, become secondary.
  virtual void DemoteFenced(const std::string& why) = 0;
  // A deposed primary is still connected: end the connection.
  virtual void DropPeerLink(const std::string& why) = 0;
  // A token newer than any seen: refuse older ones from now on (durably).
  virtual void ObserveToken(uint64_t token) = 0;
  // The primary starts acknowledging changes its standby lacks: new generation.
  virtual void StartDivergence() = 0;
};

class Fencer {
 public:
  // `clock`: the monotonic time the validity rule is computed on
  // (coord/lease.h); null is coord::MonotonicClock. Tests pass their own.
  static Result<std::unique_ptr<Fencer>> Create(const ResourceConfig& cfg, const std::string& node,
                                                FencingHost* host, const Clock* clock = nullptr);
  ~Fencer();
  Fencer(const Fencer&) = delete;
  Fencer& operator=(const Fencer&) = delete;

  // The service address to hold while leader, replacing the one on a local
  // interface that Create() makes from service_address (src/cli passes a
  // cloud one). Before Start() only.
  void UseServiceAddress(std::unique_ptr<ServiceAddress> address);

  void Start();
  void Stop();  // idempotent; releases every BeforeAck waiter

  // The token to stamp in frames: the leader key's create_revision while
  // this node leads, else 0.
  uint64_t token() const { return token_.load(); }
  bool leader() const { return leader_.load(); }

  // The data path, before answering a client change (see the header comment).
  Status BeforeAck(bool replicated);

  // `mirror promote`: refused unless this node leads, or `force` (campaign
  // despite the disk records and wait for the key). Notes: warnings.
  Status ManualPromote(bool force, std::vector<std::string>* notes);
  // `mirror demote`: give the key up and do not campaign again until the
  // next `promote` or a restart (the peer, if UpToDate, takes over).
  void ManualDemote();
  // The first half of ManualDemote: BeforeAck fails from now on (the export
  // is being stopped), the key is still held.
  void StopAcknowledging();

  Json StatusJson();

 private:
  Fencer(const ResourceConfig& cfg, std::string node, FencingHost* host);
  void Loop();
  void Round();
  bool EnsureLease(bool* fresh);  // false: no lease (etcd unreachable)
  bool RenewLease();
  void CheckLeader();
  void Campaign(const FencingView& v);
  void ReconcileRecords();
  Status OutdatePeer();
  Status PutRecord(const std::string& node, const std::string& state, uint64_t generation);
  Result<std::optional<coord::KeyValue>> ReadRecord(const std::string& node);
  void LoseLeadership(const std::string& why);
  Status TakeAddress();  // Ok when there is none to take
  void DropAddress();
  void ForgetTerm();  // after the key is lost or given up
  void RunHook(uint64_t token);
  bool LeaseValid() const;  // mu_ held
  std::string DiskKey(const std::string& node) const;
  void Event(const std::string& what);  // log line with a monotonic timestamp

  ResourceConfig cfg_;
  std::string node_, peer_, tag_;
  std::string leader_key_;
  FencingHost* host_;
  const Clock* clock_ = &coord::MonotonicClock::Default();
  std::unique_ptr<coord::EtcdClient> etcd_;
  coord::Timeout timeout_;

  mutable std::mutex mu_;  // below
  std::condition_variable cv_;
  std::optional<coord::Lease> lease_;
  std::string holder_;                     // who holds the leader key as last read ("" none)
  int64_t holder_token_ = 0;               // its create_revision
  int64_t holder_mod_revision_ = 0;        // its mod_revision (what the standby watches from)
  std::string etcd_error_;                 // last failure talking to etcd, "" after a success
  bool etcd_ok_ = false;                   // the last round reached etcd
  std::string self_record_, peer_record_;  // states as last read
  bool peer_not_uptodate_ = false;         // the peer's record is certainly not UpToDate
  bool outdating_ = false;                 // one BeforeAck is recording the peer Outdated
  bool force_campaign_ = false;            // promote --force: campaign despite the records
  bool paused_ = false;                    // demote: no campaign until promote
  bool resign_pending_ = false;            // StopAcknowledging ran; ManualDemote resigns
  std::string gate_reason_;                // why a BeforeAck waits now ("" none)
  int gate_waiters_ = 0;
  bool suspended_logged_ = false;
  bool lapse_logged_ = false;       // the lease lapsed while leading (logged once)
  bool first_ack_pending_ = false;  // no change acknowledged yet in this term (logged once)
  std::string last_campaign_note_;  // why this node does not campaign
  std::atomic<uint64_t> token_{0};
  std::atomic<bool> leader_{false};
  std::atomic<bool> stopping_{false};

  std::mutex rec_mu_;  // serializes writes of the disk records
  std::thread thread_;
  std::mutex hook_mu_;
  std::thread hook_;
  std::mutex addr_mu_;                       // serializes the calls to address_
  std::unique_ptr<ServiceAddress> address_;  // null: no service_address
};

}  // namespace cloudkeep::mirror
