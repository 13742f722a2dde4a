#include "mirror/metadata.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/byte_order.h"
#include "core/crc32c.h"

namespace cloudkeep::mirror {

namespace {

constexpr char kMagic[8] = {'C', 'K', 'M', 'R', 'M', 'E', 'T', 'A'};
constexpr size_t kNameBytes = 64;
constexpr size_t kAlOffset = 312;
// After the longest activity log (312 + 8 * 400 = 3512).
constexpr size_t kMaxTokenOffset = 3584;

using le::Get32;
using le::Get64;
using le::Put32;
using le::Put64;

void PutName(uint8_t* p, const std::string& s) {
  std::memcpy(p, s.data(), std::min(s.size(), kNameBytes - 1));
}
std::string GetName(const uint8_t* p) {
  return std::string(reinterpret_cast<const char*>(p),
                     strnlen(reinterpret_cast<const char*>(p), kNameBytes - 1));
}

Status PwriteAll(int fd, const void* data, size_t size, uint64_t offset, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (size) {
    ssize_t n = pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(what, errno);
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status PreadAll(int fd, void* data, size_t size, uint64_t offset, const std::string& what) {
  char* p = static_cast<char*>(data);
  while (size) {
    ssize_t n = pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(what, errno);
    }
    if (n == 0) return Status::Failure(what + ": file too short");
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

std::vector<uint8_t> Superblock::Serialize() const {
  std::vector<uint8_t> b(kSlotBytes, 0);
  std::memcpy(b.data(), kMagic, 8);
  Put32(&b[8], kMetaVersion);
  Put32(&b[12], static_cast<uint32_t>(kSlotBytes));
  Put64(&b[16], seq);
  PutName(&b[24], resource);
  PutName(&b[88], node);
  PutName(&b[152], peer);
  Put64(&b[216], device_size);
  Put64(&b[224], granularity);
  Put64(&b[232], al_extent_size);
  Put32(&b[240], al_slots);
  Put32(&b[244], flags);
  Put64(&b[248], gen.current);
  Put64(&b[256], gen.bitmap);
  for (size_t i = 0; i < kHistorySize; i++) Put64(&b[264 + 8 * i], gen.history[i]);
  Put64(&b[296], created_unix);
  size_t n = std::min<size_t>(al.size(), kMaxAlExtents);
  Put32(&b[304], static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; i++) Put64(&b[kAlOffset + 8 * i], al[i]);
  Put64(&b[kMaxTokenOffset], max_token);
  Put32(&b[kSlotBytes - 4], Crc32c(b.data(), kSlotBytes - 4));
  return b;
}

Result<Superblock> Superblock::Parse(const uint8_t* b, size_t size) {
  if (size < kSlotBytes) return Status::Failure("superblock too short");
  if (std::memcmp(b, kMagic, 8) != 0)
    return Status::Failure("not cloudkeep mirror metadata (bad magic)");
  if (Get32(&b[kSlotBytes - 4]) != Crc32c(b, kSlotBytes - 4))
    return Status::Failure("superblock checksum mismatch");
  if (Get32(&b[8]) != kMetaVersion)
    return Status::Failure("unsupported metadata version " + std::to_string(Get32(&b[8])));
  Superblock sb;
  sb.seq = Get64(&b[16]);
  sb.resource = GetName(&b[24]);
  sb.node = GetName(&b[88]);
  sb.peer = GetName(&b[152]);
  sb.device_size = Get64(&b[216]);
  sb.granularity = Get64(&b[224]);
  sb.al_extent_size = Get64(&b[232]);
  sb.al_slots = Get32(&b[240]);
  sb.flags = Get32(&b[244]);
  sb.gen.current = Get64(&b[248]);
  sb.gen.bitmap = Get64(&b[256]);
  for (size_t i = 0; i < kHistorySize; i++) sb.gen.history[i] = Get64(&b[264 + 8 * i]);
  sb.created_unix = Get64(&b[296]);
  uint32_t n = Get32(&b[304]);
  if (n > kMaxAlExtents) return Status::Failure("activity log too long");
  for (uint32_t i = 0; i < n; i++) sb.al.push_back(Get64(&b[kAlOffset + 8 * i]));
  sb.max_token = Get64(&b[kMaxTokenOffset]);
  if (sb.granularity == 0 || sb.device_size == 0 || sb.al_extent_size == 0)
    return Status::Failure("superblock geometry is zero");
  return sb;
}

Result<std::unique_ptr<Metadata>> Metadata::Create(const std::string& path,
                                                   const Superblock& sb_in) {
  Superblock sb = sb_in;
  sb.seq = 1;
  Bitmap bm(sb.device_size, sb.granularity);
  std::string data(kBitmapOffset + bm.StorageBytes(), '\0');
  auto slot = sb.Serialize();
  std::memcpy(data.data(), slot.data(), kSlotBytes);
  CK_RETURN_IF_ERROR(WriteFileAtomic(path, data, 0600));
  return Open(path);
}

Result<Superblock> Metadata::Peek(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT)
      return Status::Usage("metadata " + path + " does not exist (run 'mirror init')");
    return Status::Usage("metadata " + path + ": " + std::strerror(errno));
  }
  std::vector<uint8_t> buf(2 * kSlotBytes, 0);
  ssize_t n = pread(fd.get(), buf.data(), buf.size(), 0);
  if (n < static_cast<ssize_t>(kSlotBytes))
    return Status::Usage("metadata " + path + " is not cloudkeep mirror metadata");
  auto a = Superblock::Parse(buf.data(), kSlotBytes);
  Result<Superblock> b = Status::Failure("missing");
  if (n >= static_cast<ssize_t>(2 * kSlotBytes))
    b = Superblock::Parse(buf.data() + kSlotBytes, kSlotBytes);
  if (!a.ok() && !b.ok()) return Status::Usage("metadata " + path + ": " + a.status().message());
  if (a.ok() && (!b.ok() || a->seq >= b->seq)) return a;
  return b;
}

Result<std::unique_ptr<Metadata>> Metadata::Open(const std::string& path) {
  CK_ASSIGN_OR_RETURN(Superblock sb, Peek(path));
  std::unique_ptr<Metadata> m(new Metadata());
  m->path_ = path;
  m->fd_ = UniqueFd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!m->fd_.valid()) return Status::FromErrno("open " + path, errno);
  m->sb_ = sb;
  // Write the slot that does not hold the newest copy.
  std::vector<uint8_t> buf(kSlotBytes);
  auto a = pread(m->fd_.get(), buf.data(), kSlotBytes, 0) == static_cast<ssize_t>(kSlotBytes)
               ? Superblock::Parse(buf.data(), kSlotBytes)
               : Result<Superblock>(Status::Failure("short"));
  m->next_slot_ = (a.ok() && a->seq == sb.seq) ? 1 : 0;
  m->bitmap_ = Bitmap(sb.device_size, sb.granularity);
  std::vector<uint8_t> bits(m->bitmap_.StorageBytes());
  CK_RETURN_IF_ERROR(
      PreadAll(m->fd_.get(), bits.data(), bits.size(), kBitmapOffset, "read bitmap " + path));
  m->bitmap_.Load(bits.data(), bits.size());
  m->bitmap_.TakeDirtyPages();
  for (uint64_t e : sb.al) m->al_lru_.push_back(e);
  return m;
}

Superblock Metadata::sb() const {
  std::lock_guard lk(mu_);
  return sb_;
}

Status Metadata::WriteSuperblockLocked() {
  sb_.seq++;
  sb_.al.assign(al_lru_.begin(), al_lru_.end());
  auto slot = sb_.Serialize();
  CK_RETURN_IF_ERROR(PwriteAll(fd_.get(), slot.data(), slot.size(),
                               static_cast<uint64_t>(next_slot_) * kSlotBytes,
                               "write metadata " + path_));
  if (fdatasync(fd_.get()) != 0) return Status::FromErrno("fdatasync " + path_, errno);
  next_slot_ ^= 1;
  return Status::Ok();
}

Status Metadata::Update(const std::function<void(Superblock&)>& fn) {
  std::lock_guard lk(mu_);
  bool was_primary = sb_.flags & kFlagPrimary;
  fn(sb_);
  // The activity log stands in for lazily set bits (MarkDirty) only while
  // the primary flag is set, since only a crash as primary replays it: they
  // are made durable before the flag goes.
  if (was_primary && !(sb_.flags & kFlagPrimary)) CK_RETURN_IF_ERROR(FlushBitmapLocked());
  return WriteSuperblockLocked();
}

Status Metadata::FlushBitmapLocked() {
  auto pages = bitmap_.TakeDirtyPages();
  if (pages.empty()) return Status::Ok();
  for (uint64_t p : pages) {
    if (p * Bitmap::kPageBytes >= bitmap_.StorageBytes()) continue;
    auto bytes = bitmap_.PageBytes(p);
    CK_RETURN_IF_ERROR(PwriteAll(fd_.get(), bytes.data(), bytes.size(),
                                 kBitmapOffset + p * Bitmap::kPageBytes, "write bitmap " + path_));
  }
  if (fdatasync(fd_.get()) != 0) return Status::FromErrno("fdatasync " + path_, errno);
  return Status::Ok();
}

Status Metadata::MarkDirty(uint64_t offset, uint64_t length) {
  std::lock_guard lk(mu_);
  if (bitmap_.Set(offset, length) == 0) return Status::Ok();
  bool covered = true;
  for (uint64_t e : Extents(offset, length))
    if (std::find(al_lru_.begin(), al_lru_.end(), e) == al_lru_.end()) covered = false;
  if (covered) return Status::Ok();
  return FlushBitmapLocked();
}

Status Metadata::MarkAllDirty() {
  std::lock_guard lk(mu_);
  bitmap_.SetAll();
  return FlushBitmapLocked();
}

void Metadata::ClearInMemory(uint64_t offset, uint64_t length) {
  std::lock_guard lk(mu_);
  bitmap_.Clear(offset, length);
}

void Metadata::ClearAllInMemory() {
  std::lock_guard lk(mu_);
  bitmap_.ClearAll();
}

Status Metadata::FlushBitmap() {
  std::lock_guard lk(mu_);
  return FlushBitmapLocked();
}

Status Metadata::MergeBitmap(const Bitmap& other) {
  std::lock_guard lk(mu_);
  if (!bitmap_.Union(other)) return Status::Failure("bitmap geometry differs");
  return FlushBitmapLocked();
}

Bitmap Metadata::BitmapCopy() const {
  std::lock_guard lk(mu_);
  return bitmap_;
}

uint64_t Metadata::DirtyBytes() const {
  std::lock_guard lk(mu_);
  return bitmap_.DirtyBytes();
}

uint64_t Metadata::DirtyBits() const {
  std::lock_guard lk(mu_);
  return bitmap_.Count();
}

bool Metadata::AnyDirty(uint64_t offset, uint64_t length) const {
  std::lock_guard lk(mu_);
  return bitmap_.AnySet(offset, length);
}

uint64_t Metadata::granularity() const {
  std::lock_guard lk(mu_);
  return sb_.granularity;
}

std::vector<uint64_t> Metadata::Extents(uint64_t offset, uint64_t length) const {
  std::vector<uint64_t> out;
  if (length == 0) return out;
  for (uint64_t e = offset / sb_.al_extent_size; e <= (offset + length - 1) / sb_.al_extent_size;
       e++)
    out.push_back(e);
  return out;
}

Status Metadata::AlBegin(uint64_t offset, uint64_t length) {
  std::unique_lock lk(mu_);
  bool changed = false;
  for (uint64_t e : Extents(offset, length)) {
    auto it = std::find(al_lru_.begin(), al_lru_.end(), e);
    if (it != al_lru_.end()) {
      al_lru_.splice(al_lru_.begin(), al_lru_, it);
    } else {
      // Make room: the least recently used extent with no write in flight leaves.
      while (al_lru_.size() >= sb_.al_slots) {
        auto victim = al_lru_.end();
        for (auto r = al_lru_.rbegin(); r != al_lru_.rend(); ++r)
          if (al_refs_[*r] == 0) {
            victim = std::prev(r.base());
            break;
          }
        if (victim != al_lru_.end()) {
          // Its bits may be set only in memory (MarkDirty): durable before
          // the log stops covering it.
          CK_RETURN_IF_ERROR(FlushBitmapLocked());
          al_refs_.erase(*victim);
          al_lru_.erase(victim);
          break;
        }
        al_cv_.wait(lk);
      }
      al_lru_.push_front(e);
      changed = true;
    }
    al_refs_[e]++;
  }
  if (changed) return WriteSuperblockLocked();
  return Status::Ok();
}

void Metadata::AlEnd(uint64_t offset, uint64_t length) {
  std::lock_guard lk(mu_);
  for (uint64_t e : Extents(offset, length))
    if (--al_refs_[e] <= 0) al_refs_[e] = 0;
  al_cv_.notify_all();
}

Status Metadata::RecoverActivityLog() {
  std::lock_guard lk(mu_);
  for (uint64_t e : al_lru_) bitmap_.Set(e * sb_.al_extent_size, sb_.al_extent_size);
  CK_RETURN_IF_ERROR(FlushBitmapLocked());
  al_lru_.clear();
  al_refs_.clear();
  return WriteSuperblockLocked();
}

}  // namespace cloudkeep::mirror
