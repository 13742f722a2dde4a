// EtcdClient: a small etcd v3 client over the gRPC-gateway JSON API.
//
// cloudkeep does not implement consensus; it asks etcd (v3 API, 3.4 or
// later) for leases, leader election and the record of which copy is up to
// date (docs/coord.md). This client speaks etcd's JSON gateway over libcurl
// (as Patroni does): each call is one HTTP POST to one endpoint.
//
// Every call takes a timeout that bounds the whole call, across endpoints,
// connection, TLS, authentication and reply: nothing here blocks longer.
//
// Errors are values. A failed call's Status is one of two kinds:
//   - IsUnreachable(status): no definite answer. No endpoint could be
//     reached, the timeout passed, the connection broke, or etcd itself
//     could not decide (no leader, its proposal timed out). The request may
//     or may not have been applied: the caller must treat the outcome as
//     unknown — never as success, and for a write never as "not done".
//   - otherwise: etcd answered and refused (a lease that does not exist,
//     bad credentials, permission denied, a malformed request) and applied
//     nothing.
// A transaction whose comparison fails is not an error: it is a
// TxnResponse with succeeded == false.
//
// Endpoints are tried in order, starting with the one that answered last.
// The client moves on to the next endpoint when the request certainly did
// not reach the current one (connection refused, no route, TLS handshake
// failure: nothing was sent). After a request was sent, only calls that are
// safe to repeat (reads, lease keepalive and revoke) move on; a write whose
// reply was lost returns "unreachable" rather than being sent twice.
//
// Thread safety: an EtcdClient may be used from several threads at once;
// each call uses its own connection from an internal pool.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coord/etcd_json.h"
#include "core/status.h"

namespace cloudkeep::coord {

using Timeout = std::chrono::milliseconds;

struct EtcdOptions {
  // "http://HOST:PORT" or "https://HOST:PORT", at least one.
  std::vector<std::string> endpoints;
  // The most one endpoint's TCP+TLS connect may take (within the call's timeout),
  // so that a dead first endpoint leaves time for the next.
  std::chrono::milliseconds connect_timeout{1000};
  // https: the CA that signed the servers' certificates (else the system's),
  // and an optional client certificate and key (PEM).
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // etcd authentication (/v3/auth/authenticate); empty: none. The token is
  // fetched on first use and again when etcd says it is no longer valid.
  std::string username;
  std::string password;
};

// Whether a Status from this library means "no definite answer from etcd".
bool IsUnreachable(const Status& status);

class EtcdClient {
 public:
  // Usage errors for a missing or malformed endpoint or unreadable TLS files.
  static Result<std::unique_ptr<EtcdClient>> Create(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // GET /health on the endpoints until one says {"health": "true"}.
  Status Health(Timeout timeout);

  // The key, or nullopt when it does not exist.
  Result<std::optional<KeyValue>> Get(const std::string& key, Timeout timeout);
  // Every key that starts with `prefix`, in key order.
  Result<RangeResponse> GetPrefix(const std::string& prefix, Timeout timeout);
  // Returns the revision of the put. `lease` 0: no lease.
  Result<int64_t> Put(const std::string& key, const std::string& value, int64_t lease,
                      Timeout timeout);
  // Returns how many keys were deleted (0 or 1).
  Result<int64_t> Delete(const std::string& key, Timeout timeout);
  Result<TxnResponse> Txn(const TxnRequest& txn, Timeout timeout);

  Result<LeaseGrantResponse> LeaseGrant(int64_t ttl_seconds, Timeout timeout);
  // Renews the lease; returns its TTL from now as etcd granted it, or 0 when
  // the lease no longer exists (expired or revoked).
  Result<int64_t> LeaseKeepAliveOnce(int64_t lease, Timeout timeout);
  // Revoking a lease that no longer exists succeeds (it is gone either way).
  Status LeaseRevoke(int64_t lease, Timeout timeout);
  Result<LeaseTimeToLive> LeaseTimeToLiveOf(int64_t lease, bool with_keys, Timeout timeout);

  // Watches `key` (POST /v3/watch, a streamed reply) until it changes after
  // `after_revision` — a put or delete with a greater revision, or a
  // compaction that makes the history unknown — or `timeout` passes: true
  // when it changed (re-read it), false when the time passed first. One
  // endpoint (the one that answered last); an error when none answers.
  Result<bool> WaitForChange(const std::string& key, int64_t after_revision, Timeout timeout);

  // One request: POST `body` to `path` ("/v3/kv/range"); `repeatable`: safe
  // to send again to another endpoint after it may have been received.
  Result<nlohmann::json> Call(const std::string& path, const nlohmann::json& body, bool repeatable,
                              Timeout timeout);

  const EtcdOptions& options() const { return options_; }

 private:
  explicit EtcdClient(EtcdOptions options);
  Result<nlohmann::json> CallAt(const std::string& path, const std::string* body, bool repeatable,
                                bool with_auth, uint64_t deadline_ns);
  Status Authenticate(uint64_t deadline_ns);
  void* TakeHandle();
  void ReturnHandle(void* handle);

  EtcdOptions options_;
  std::atomic<size_t> preferred_{0};
  std::mutex mu_;            // guards idle_ and token_
  std::vector<void*> idle_;  // CURL easy handles, each with its connection cache
  std::string token_;        // etcd auth token, "" until authenticated
};

}  // namespace cloudkeep::coord
