#include "providers/local/snapshot_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "aws/s3.h"
#include "core/clock.h"
#include "core/log.h"
#include "snapshot/model.h"

namespace cloudkeep::local {

Result<std::unique_ptr<SnapshotBackend>> SnapshotBackend::Open(const std::string& store_root,
                                                               const std::string& snapshot_id,
                                                               SnapshotBackendOptions options) {
  if (!snapshot::IsSnapshotId(snapshot_id))
    return Status::Usage(
        fmt::format("invalid snapshot id '{}': expected snap- and 17 hex digits", snapshot_id));
  if (aws::IsS3Url(store_root))
    return Status::Usage(fmt::format(
        "store '{}' is in S3: serve and mount need a directory store (restore the snapshot first)",
        store_root));
  std::unique_ptr<SnapshotBackend> b(new SnapshotBackend());
  CK_ASSIGN_OR_RETURN(b->store_, LocalStore::Open(store_root, false));
  // Held until the backend goes: no delete or prune removes a chunk we serve.
  CK_RETURN_IF_ERROR(b->store_->Lock(LocalStore::LockMode::kShared, options.lock_wait));
  if (!b->store_->HasSnapshot(snapshot_id))
    return Status::Usage(
        fmt::format("unknown snapshot '{}' in store {}", snapshot_id, b->store_->root()));
  CK_ASSIGN_OR_RETURN(b->manifest_, b->store_->LoadManifest(snapshot_id));
  const Manifest& m = b->manifest_;
  b->size_ = m.snapshot.size_bytes;
  if (m.chunk_size == 0 || m.chunks.size() != (b->size_ + m.chunk_size - 1) / m.chunk_size)
    return Status::Failure(
        fmt::format("manifest of {} has a chunk table that does not match its "
                    "size",
                    snapshot_id));
  b->capacity_ = std::max({options.cache_bytes, kMinSnapshotCacheBytes, 8 * m.chunk_size});
  b->stats_.capacity_bytes = b->capacity_;
  return b;
}

nbd::BackendCaps SnapshotBackend::Caps() const {
  nbd::BackendCaps c;
  c.extents = true;
  c.cache = true;
  // Read-only: there is nothing a flush would have to cover.
  c.multi_conn = true;
  return c;
}

std::string SnapshotBackend::Description() const {
  const auto& s = manifest_.snapshot;
  return fmt::format("snapshot {} of {} ({})", s.id, s.volume_id, FormatRfc3339(s.created));
}

std::string SnapshotBackend::Identity() const {
  return fmt::format("snapshot {} of {}", manifest_.snapshot.id, manifest_.snapshot.volume_id);
}

SnapshotCacheStats SnapshotBackend::Stats() const {
  std::lock_guard<std::mutex> l(mu_);
  SnapshotCacheStats s = stats_;
  s.cached_bytes = cached_bytes_;
  return s;
}

void SnapshotBackend::Insert(uint64_t i, Chunk data) {
  if (cache_.count(i)) return;
  cached_bytes_ += data->size();
  lru_.push_front(i);
  cache_.emplace(i, Entry{std::move(data), lru_.begin()});
  while (cached_bytes_ > capacity_ && lru_.size() > 1) {
    uint64_t victim = lru_.back();
    lru_.pop_back();
    auto it = cache_.find(victim);
    cached_bytes_ -= it->second.data->size();
    cache_.erase(it);
    ++stats_.evictions;
  }
}

Result<SnapshotBackend::Chunk> SnapshotBackend::GetChunk(uint64_t i) {
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock<std::mutex> l(mu_);
    if (auto it = cache_.find(i); it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      ++stats_.hits;
      return it->second.data;
    }
    if (auto it = flights_.find(i); it != flights_.end()) {
      // Someone is reading this chunk now: wait for their result.
      std::shared_ptr<Flight> f = it->second;
      ++stats_.joined;
      f->cv.wait(l, [&] { return f->done; });
      if (!f->status.ok()) return f->status;
      return f->data;
    }
    flight = std::make_shared<Flight>();
    flights_.emplace(i, flight);
    ++stats_.misses;
  }

  const ChunkHash& h = manifest_.chunks[i];
  const uint64_t off = i * manifest_.chunk_size;
  const uint64_t want = std::min(manifest_.chunk_size, size_ - off);
  Chunk data;
  Status status;
  auto got = store_->chunks().Get(h);
  if (!got.ok()) {
    status = got.status();
  } else if (got->size() != want) {
    status = Status::Failure(
        fmt::format("chunk {}: {} bytes, the snapshot expects {}", HashHex(h), got->size(), want));
  } else {
    data = std::make_shared<const std::string>(std::move(got).value());
  }
  bool first_report = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (status.ok()) {
      Insert(i, data);
    } else {
      ++stats_.errors;
      first_report = reported_.insert(i).second;
    }
    flight->done = true;
    flight->data = data;
    if (!status.ok())
      flight->status = Status::FromErrno(
          fmt::format("snapshot {} at offset {}: {}", manifest_.snapshot.id, off, status.message()),
          EIO);
    flights_.erase(i);
  }
  flight->cv.notify_all();
  if (!status.ok()) {
    if (first_report)
      log::Error(
          "snapshot {}: chunk {} at offset {} fails verification ({}); reads of it fail "
          "with EIO",
          manifest_.snapshot.id, HashHex(h), off, status.message());
    return flight->status;
  }
  return data;
}

Status SnapshotBackend::Pread(void* buf, uint64_t count, uint64_t offset) {
  auto* out = static_cast<char*>(buf);
  const uint64_t cs = manifest_.chunk_size;
  for (uint64_t pos = offset, end = offset + count; pos < end;) {
    uint64_t i = pos / cs;
    uint64_t in = pos - i * cs;
    uint64_t n = std::min(end - pos, cs - in);
    if (IsZeroHash(manifest_.chunks[i])) {
      std::memset(out + (pos - offset), 0, n);
    } else {
      CK_ASSIGN_OR_RETURN(Chunk c, GetChunk(i));
      std::memcpy(out + (pos - offset), c->data() + in, n);
    }
    pos += n;
  }
  return Status::Ok();
}

Status SnapshotBackend::Extents(uint64_t count, uint64_t offset, std::vector<nbd::Extent>* out) {
  const uint64_t cs = manifest_.chunk_size;
  const size_t first = out->size();
  for (uint64_t pos = offset, end = offset + count; pos < end;) {
    uint64_t i = pos / cs;
    uint64_t n = std::min(end - pos, (i + 1) * cs - pos);
    uint32_t flags = IsZeroHash(manifest_.chunks[i]) ? nbd::Extent::kHole | nbd::Extent::kZero : 0;
    if (out->size() > first && out->back().flags == flags)
      out->back().length += n;
    else
      out->push_back(nbd::Extent{n, flags});
    pos += n;
  }
  return Status::Ok();
}

Status SnapshotBackend::Cache(uint64_t count, uint64_t offset) {
  const uint64_t cs = manifest_.chunk_size;
  // Prefetch no more than the cache holds: the rest would evict what was just read.
  uint64_t budget = capacity_;
  for (uint64_t i = offset / cs; i * cs < offset + count && budget >= cs; ++i) {
    if (IsZeroHash(manifest_.chunks[i])) continue;
    CK_RETURN_IF_ERROR(GetChunk(i).status());
    budget -= cs;
  }
  return Status::Ok();
}

}  // namespace cloudkeep::local
