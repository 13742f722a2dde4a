// Leader election and guarded state records on etcd, one step at a time.
//
// A leader key (docs/coord.md: /cloudkeep/mirror/RESOURCE/leader) is held by
// whoever created it, attached to its lease; it disappears when the lease
// expires or is revoked, and then the next CampaignOnce may create it. Each
// function is one etcd transaction: there is no background thread here, the
// caller decides when to campaign, renew (lease.h) and give up.
//
// Fencing token: the leader key's create_revision. Every win creates the key
// afresh (the transaction's guard is "create_revision == 0", i.e. the key
// does not exist), and etcd's store revision increases with every write, so
// the token of each new leader is strictly greater than that of every
// earlier one — also when the same node wins again, and across etcd
// restarts (revisions are persisted). It stays fixed while the leader
// renews its lease, and anyone can read it back (Get).
// The txn header revision is not used as the token: on a lost campaign or a
// later read it is just the store's current revision, not the leader's.
//
// Every call returns IsUnreachable() errors (etcd_client.h) when the outcome
// is unknown. A campaign whose reply was lost can be repeated with the same
// lease: a key already held with that lease counts as won.
//
// Thread safety: free functions; safe from any thread (EtcdClient is).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "coord/etcd_client.h"
#include "core/status.h"

namespace cloudkeep::coord {

struct CampaignResult {
  bool won = false;  // the key is ours (created now, or already held with our lease)
  KeyValue leader;   // the key as it is now: ours if won, the holder's otherwise
  int64_t token() const { return leader.create_revision; }
};

// Txn: if create_revision(key) == 0 then put key=value with `lease`, else get key.
Result<CampaignResult> CampaignOnce(EtcdClient& etcd, const std::string& key,
                                    const std::string& value, int64_t lease, Timeout timeout);

// Deletes the key only if it is still held with `lease` and has the same
// create_revision (the same term). false: it was not ours (any more).
Result<bool> Resign(EtcdClient& etcd, const std::string& key, int64_t lease, int64_t token,
                    Timeout timeout);

// The current holder, or nullopt when nobody leads.
Result<std::optional<KeyValue>> GetLeader(EtcdClient& etcd, const std::string& key,
                                          Timeout timeout);

// Only the holder of `key` in term `token` (create_revision) passes.
struct LeaderGuard {
  std::string key;
  int64_t token = 0;
};

struct CasResult {
  bool succeeded = false;
  int64_t revision = 0;             // succeeded: the new mod_revision of the key
  std::optional<KeyValue> current;  // failed: the key as it is (nullopt: absent)
  bool guard_held = true;           // failed: whether the leader guard still held
};

// Puts `value` at `key` only if the key's mod_revision is `expected_mod_revision`
// (0: the key must not exist) and, with a guard, only while the guard's key
// still has the guard's token: a deposed leader cannot write a state record.
Result<CasResult> CompareAndPut(EtcdClient& etcd, const std::string& key, const std::string& value,
                                int64_t expected_mod_revision,
                                const std::optional<LeaderGuard>& guard, Timeout timeout);

}  // namespace cloudkeep::coord
