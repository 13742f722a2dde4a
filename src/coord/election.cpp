#include "coord/election.h"

namespace cloudkeep::coord {
namespace {

Status Bad(const std::string& what) {
  return Status::Failure("etcd txn reply: " + what);
}

std::optional<KeyValue> FirstKv(const OpResponse& r) {
  if (r.kvs.empty()) return std::nullopt;
  return r.kvs.front();
}

}  // namespace

Result<CampaignResult> CampaignOnce(EtcdClient& etcd, const std::string& key,
                                    const std::string& value, int64_t lease, Timeout timeout) {
  if (lease == 0) return Status::Usage("campaign for '" + key + "': no lease");
  TxnRequest txn;
  txn.compare.push_back(Compare::CreateRevision(key, 0));
  txn.success = {Op::Put(key, value, lease), Op::Get(key)};
  txn.failure = {Op::Get(key)};
  CK_ASSIGN_OR_RETURN(TxnResponse r, etcd.Txn(txn, timeout));
  const size_t want = r.succeeded ? 2 : 1;
  if (r.responses.size() != want || r.responses.back().kind != Op::Kind::kRange)
    return Bad("campaign: unexpected responses");
  std::optional<KeyValue> kv = FirstKv(r.responses.back());
  CampaignResult out;
  if (!kv) {
    // The key vanished between the compare and the read inside one txn:
    // impossible (a txn is atomic), so the reply is not what etcd sends.
    return Bad("campaign: the leader key is missing");
  }
  out.leader = *kv;
  // Already ours: an earlier campaign with this lease won (its reply may
  // have been lost). Only the holder of the lease id can attach keys to it.
  out.won = kv->lease == lease;
  return out;
}

Result<bool> Resign(EtcdClient& etcd, const std::string& key, int64_t lease, int64_t token,
                    Timeout timeout) {
  TxnRequest txn;
  txn.compare = {Compare::Lease(key, lease), Compare::CreateRevision(key, token)};
  txn.success = {Op::Delete(key)};
  CK_ASSIGN_OR_RETURN(TxnResponse r, etcd.Txn(txn, timeout));
  return r.succeeded;
}

Result<std::optional<KeyValue>> GetLeader(EtcdClient& etcd, const std::string& key,
                                          Timeout timeout) {
  return etcd.Get(key, timeout);
}

Result<CasResult> CompareAndPut(EtcdClient& etcd, const std::string& key, const std::string& value,
                                int64_t expected_mod_revision,
                                const std::optional<LeaderGuard>& guard, Timeout timeout) {
  if (guard && guard->token <= 0)
    return Status::Usage("compare-and-put '" + key + "': a leader guard needs a token");
  TxnRequest txn;
  txn.compare.push_back(Compare::ModRevision(key, expected_mod_revision));
  if (guard) txn.compare.push_back(Compare::CreateRevision(guard->key, guard->token));
  txn.success = {Op::Put(key, value)};
  txn.failure = {Op::Get(key)};
  if (guard) txn.failure.push_back(Op::Get(guard->key));
  CK_ASSIGN_OR_RETURN(TxnResponse r, etcd.Txn(txn, timeout));
  CasResult out;
  out.succeeded = r.succeeded;
  if (r.succeeded) {
    if (r.responses.size() != 1) return Bad("compare-and-put: unexpected responses");
    out.revision = r.header.revision;
    return out;
  }
  if (r.responses.size() != txn.failure.size()) return Bad("compare-and-put: unexpected responses");
  out.current = FirstKv(r.responses[0]);
  if (guard) {
    std::optional<KeyValue> leader = FirstKv(r.responses[1]);
    out.guard_held = leader && leader->create_revision == guard->token;
  }
  return out;
}

}  // namespace cloudkeep::coord
