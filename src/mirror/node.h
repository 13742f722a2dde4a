// Node: the per-node mirror daemon (`cloudkeep mirror run`).
//
// A Node owns one resource's local copy: the backing device (locked against
// a second user), the metadata file, and the replication link to the one
// peer. It keeps connecting to the peer (the node whose name sorts first
// connects, the other accepts), agrees on what must be resynced from the
// generation identifiers (generation.h), replicates, resyncs, answers online
// verify, and on the primary serves the device over NBD through a
// MirrorBackend. State changes are logged one line each on stderr.
//
// The data path (docs/mirror.md, "Semantics"):
//  - Write: overlapping writes are serialized, so both copies apply them in
//    the same order; the write is sent to the peer (stream order = sequence
//    order) and written locally at the same time; protocol C answers after
//    both, protocol A once it is queued. Without a peer, or after the peer
//    timed out, the region is set in the bitmap (durably) before the write.
//  - Zero (the export's TRIM and WRITE_ZEROES): replicated like a write,
//    without data; both copies punch a hole or zero the range, so they stay
//    byte-identical.
//  - Flush: a FLUSH barrier that the peer answers after making every earlier
//    write durable, and a local fdatasync at the same time.
//  - A write the peer answers with an error is marked out of sync.
//  - A peer that does not answer within peer_timeout is disconnected; its
//    unacknowledged writes, and writes since its last flush, are marked.
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/output.h"
#include "core/status.h"
#include "mirror/config.h"

namespace cloudkeep::mirror {

struct NodeOptions {
  ResourceConfig cfg;
  std::string node;
  std::string run_dir;                     // control socket directory
  std::vector<std::string> export_listen;  // NBD export addresses while primary
  std::string export_socket;               // NBD export Unix socket while primary
  bool start_primary = false;              // promote at start (as `promote` would)
  // service_address_cloud: moves the service address to this node in the
  // cloud before it goes on the local interface (service_address.h).
  // Set by the caller that knows the cloud (src/cli); empty: local only.
  std::function<Status()> cloud_address_take;
  std::string cloud_address_name;  // for log lines: "AWS eni-… (10.0.5.10)"
};

class Node {
 public:
  static Result<std::unique_ptr<Node>> Start(NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void Stop();  // idempotent; also from a signal-watching thread
  void Wait();

  // The data path used by the NBD export on the primary.
  uint64_t Size() const;
  Status Read(void* buf, uint64_t count, uint64_t offset);
  Status Write(const void* buf, uint64_t count, uint64_t offset, bool fua);
  // TRIM and WRITE_ZEROES: the range reads as zeroes on both copies (may_trim: holes allowed).
  Status Zero(uint64_t count, uint64_t offset, bool may_trim, bool fua);
  Status Flush();

  // Control operations (the control socket calls these).
  Json StatusJson();
  // Ok with warnings appended to *notes; kUsage when refused.
  Status Promote(bool force, std::vector<std::string>* notes);
  Status Demote();
  // Compares checksums region by region with the connected peer.
  Result<Json> Verify(bool resync, uint64_t block_bytes);
  Status Resolve(const std::string& discard_node);

  struct Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Where the control socket of `node` of `resource` lives.
std::string ControlSocketPath(const std::string& run_dir, const std::string& resource,
                              const std::string& node);
// Sends one request to a running daemon and returns its answer; an answer
// with "error" becomes a Status of its "exit_code".
Result<Json> ControlCall(const std::string& socket_path, const Json& request, Micros timeout);

}  // namespace cloudkeep::mirror
