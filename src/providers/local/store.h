// LocalStore: the embedded provider's directory — chunks, manifests, lock.
// Every file name below is built and parsed by store_layout.h, nowhere else.
//
//   <root>/config                  format version and chunk size (JSON)
//   <root>/lock                    flock(2): exclusive for writers, shared for readers
//   <root>/chunks/xx/<sha256>      ChunkStore
//   <root>/snapshots/<id>.json     one manifest per snapshot, written last
//   <root>/tmp/                    staged chunks and run markers; a marker left
//                                  behind means a run died, and the next writer
//                                  cleans up and collects garbage
//
// The same layout lives in an S3 bucket under a prefix (OpenRemote, an
// ObjectBackend): there it has no tmp/ staging, no rename and no flock.
// Chunks are uploaded with put-if-absent as they are made, the manifest is
// put last, and the lock is an object, locks/<random>.json, naming its host,
// pid, mode and time, rewritten every kLockRefresh while it is held and
// counted stale kLockStale after its time (or at once when its host is this
// host and its pid is gone). An exclusive lock waits for every other live
// lock; a shared one for every live exclusive one (restic's design). Every
// run that writes takes the exclusive lock, so garbage collection never runs
// beside a create whose chunks are not referenced yet.
//
// Crash safety: a snapshot exists iff its manifest exists; a manifest is
// written only after every chunk it names is durable and in place; deletion
// removes the manifest first and the chunks after. So a kill at any instant
// leaves a store in which every listed snapshot restores and verifies.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/duration.h"
#include "core/fs.h"
#include "core/status.h"
#include "providers/local/chunk_store.h"
#include "providers/local/manifest.h"
#include "providers/local/object_backend.h"

namespace cloudkeep::local {

constexpr uint64_t kDefaultChunkSize = 512 * 1024;
// Lock objects on an object store (see above).
constexpr auto kLockRefresh = std::chrono::minutes(5);
constexpr auto kLockStale = std::chrono::minutes(30);

class LocalStore {
 public:
  enum class LockMode { kShared, kExclusive };

  // Opens the store at `root`, creating it if `create` (kUsage if `root` is a
  // file or cannot be made a store).
  static Result<std::unique_ptr<LocalStore>> Open(const std::string& root, bool create);
  // The store in an object store (S3): the same format, through `backend`.
  static Result<std::unique_ptr<LocalStore>> OpenRemote(std::unique_ptr<ObjectBackend> backend,
                                                        bool create);
  ~LocalStore();
  bool remote() const { return remote_ != nullptr; }
  // The store path from --store, CLOUDKEEP_STORE, or the default for this user.
  static std::string DefaultRoot();

  // Blocks until the lock is held, saying once on stderr whom it waits for;
  // gives up with kFailure after `wait`. Exclusive locking also cleans up
  // after a dead run (see above).
  Status Lock(LockMode mode, Micros wait);

  const std::string& root() const { return root_; }
  uint64_t chunk_size() const { return chunk_size_; }
  ChunkStore& chunks() { return chunks_; }

  // A run marker under tmp/ (removed by Finish): its presence after a crash
  // triggers cleanup. `clones` are files outside the store to delete then.
  Status BeginRun(const std::string& kind, const std::vector<std::string>& clones);
  Status UpdateRunClones(const std::vector<std::string>& clones);
  void FinishRun();

  // The ids of every manifest file in snapshots/ ("<id>.json"; the
  // ".tmp-<pid>" files of an interrupted write are not manifests), sorted.
  // store_layout.h owns the names.
  std::vector<std::string> ManifestIds() const;
  // Every manifest, the readable ones decoded and the others named with the
  // reason (truncated, trailing bytes, bad checksum, unreadable, wrong id):
  // one damaged file never hides the others.
  struct DamagedManifest {
    std::string id;
    std::string reason;
  };
  struct ManifestScan {
    std::vector<Manifest> good;
    std::vector<DamagedManifest> damaged;
  };
  ManifestScan ScanManifests() const;
  Result<Manifest> LoadManifest(const std::string& id) const;
  bool HasSnapshot(const std::string& id) const;
  Status CommitManifest(const Manifest& m);
  Status RemoveManifest(const std::string& id);
  // Removes chunk files that no manifest references; returns how many. While
  // any manifest is damaged nothing is removed (a damaged manifest may still
  // reference any chunk), and a warning says so.
  Result<uint64_t> CollectGarbage();

  std::string ManifestPath(const std::string& id) const;
  // Makes the store's staged data durable: syncfs on its filesystem (an
  // object store has made each object durable before it answered).
  Status SyncData();

 private:
  explicit LocalStore(std::string root);
  Status RecoverAfterCrash();
  Status RemoteLock(LockMode mode, Micros wait);
  Status RemoteRecover();
  void StopLockRefresh();
  std::unique_ptr<ObjectBackend> remote_;
  std::string remote_lock_key_;
  std::string remote_lock_body_;
  std::mutex refresh_mu_;
  std::condition_variable refresh_cv_;
  bool refresh_stop_ = false;
  std::thread refresh_;
  std::string root_;
  uint64_t chunk_size_ = kDefaultChunkSize;
  ChunkStore chunks_;
  UniqueFd lock_fd_;
  std::optional<LockMode> held_;
  std::string marker_;
};

// "snap-" and 17 random hex digits, like EBS.
std::string NewSnapshotId();

}  // namespace cloudkeep::local
