#include "nbd/durable_bitmap.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "core/byte_order.h"
#include "core/crc32c.h"
#include "nbd/fd_io.h"

namespace cloudkeep::nbd {

static_assert(std::endian::native == std::endian::little,
              "the map file stores 64-bit words little-endian, as they are in memory");

namespace {

// Layout of the 4096-byte header (docs/nbd-map-format.md).
constexpr char kMagic[8] = {'C', 'K', 'B', 'M', 'A', 'P', '0', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderSize = 4096;
constexpr uint64_t kPageBytes = 4096;
constexpr uint64_t kWordsPerPage = kPageBytes / 8;
constexpr size_t kMaxIdentity = 1024;
constexpr size_t kCrcOffset = kHeaderSize - 4;

using le::Get32;
using le::Get64;
using le::Put32;
using le::Put64;

uint64_t BitsFor(uint64_t size, uint64_t granularity) {
  return (size + granularity - 1) / granularity;
}
uint64_t BitmapBytes(uint64_t bits) {
  uint64_t bytes = (bits + 7) / 8;
  return (bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
}

const char* KindName(MapKind k) {
  return k == MapKind::kOverlay ? "overlay" : k == MapKind::kHydrate ? "hydrate" : "unknown";
}

// One process at a time per map: two hydrates (or overlays) of one file
// would each believe the other's regions are theirs.
Status LockMap(int fd, const std::string& path) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return Status::Ok();
  if (errno == EWOULDBLOCK)
    return Status::Usage(fmt::format("'{}' is in use by another cloudkeep process", path));
  return Status::FromErrno("cannot lock " + path, errno);
}

}  // namespace

std::string OverlayMapPath(const std::string& data_path) {
  return data_path + ".cloudkeep-overlay";
}
std::string HydrateMapPath(const std::string& target_path) {
  return target_path + ".cloudkeep-hydrate";
}

DurableBitmap::DurableBitmap(uint64_t size, uint64_t granularity)
    : size_(size), granularity_(granularity), bits_(BitsFor(size, granularity)) {
  nwords_ = static_cast<size_t>((bits_ + 63) / 64);
  words_ = std::make_unique<std::atomic<uint64_t>[]>(nwords_ ? nwords_ : 1);
  for (size_t i = 0; i < nwords_; ++i) words_[i].store(0, std::memory_order_relaxed);
}

std::unique_ptr<DurableBitmap> DurableBitmap::InMemory(uint64_t size, uint64_t granularity) {
  return std::unique_ptr<DurableBitmap>(new DurableBitmap(size, granularity));
}

Result<std::unique_ptr<DurableBitmap>> DurableBitmap::Create(const std::string& path,
                                                             const MapHeader& h) {
  if (h.granularity == 0 || (h.granularity & (h.granularity - 1)))
    return Status::Usage(fmt::format("map granularity {} is not a power of two", h.granularity));
  if (h.identity.size() > kMaxIdentity) return Status::Usage("map identity is too long");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return Status::Usage(fmt::format("'{}' exists", path));
  std::unique_ptr<DurableBitmap> bm(new DurableBitmap(h.size, h.granularity));
  uint64_t map_bytes = BitmapBytes(bm->bits_);

  uint8_t hdr[kHeaderSize] = {};
  std::memcpy(hdr, kMagic, 8);
  Put32(hdr + 8, kVersion);
  Put32(hdr + 12, static_cast<uint32_t>(h.kind));
  Put64(hdr + 16, h.size);
  Put64(hdr + 24, h.granularity);
  Put64(hdr + 32, bm->bits_);
  Put64(hdr + 40, kHeaderSize);
  Put64(hdr + 48, map_bytes);
  Put32(hdr + 56, static_cast<uint32_t>(h.identity.size()));
  std::memcpy(hdr + 64, h.identity.data(), h.identity.size());
  Put32(hdr + kCrcOffset, Crc32c(hdr, kCrcOffset));

  // Appears complete or not at all: a crash while creating leaves only the temporary name.
  std::string tmp = fmt::format("{}.tmp-{}", path, ::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return Status::FromErrno("cannot create " + tmp, errno);
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  if (::ftruncate(fd.get(), static_cast<off_t>(kHeaderSize + map_bytes)) != 0)
    return fail(Status::FromErrno("cannot size " + tmp, errno));
  Status s = PwriteFull(fd.get(), hdr, sizeof hdr, 0, tmp);
  if (!s.ok()) return fail(s);
  if (::fsync(fd.get()) != 0) return fail(Status::FromErrno("cannot fsync " + tmp, errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(Status::FromErrno("cannot rename " + tmp, errno));
  CK_RETURN_IF_ERROR(FsyncDir(DirName(path)));
  CK_RETURN_IF_ERROR(LockMap(fd.get(), path));
  bm->path_ = path;
  bm->fd_ = std::move(fd);
  return bm;
}

Result<MapHeader> DurableBitmap::ReadHeader(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("cannot open " + path, errno);
  uint8_t hdr[kHeaderSize];
  auto bad = [&](const std::string& why) {
    return Status::Usage(fmt::format("'{}' is not a cloudkeep map file: {}", path, why));
  };
  if (Status s = PreadFull(fd.get(), hdr, sizeof hdr, 0, path, false); !s.ok())
    return bad("too short");
  if (std::memcmp(hdr, kMagic, 8) != 0) return bad("bad magic");
  if (Get32(hdr + kCrcOffset) != Crc32c(hdr, kCrcOffset)) return bad("header checksum mismatch");
  if (Get32(hdr + 8) != kVersion) return bad(fmt::format("version {}", Get32(hdr + 8)));
  MapHeader h;
  uint32_t kind = Get32(hdr + 12);
  if (kind != 1 && kind != 2) return bad(fmt::format("kind {}", kind));
  h.kind = static_cast<MapKind>(kind);
  h.size = Get64(hdr + 16);
  h.granularity = Get64(hdr + 24);
  if (h.granularity == 0 || (h.granularity & (h.granularity - 1))) return bad("bad granularity");
  uint64_t bits = Get64(hdr + 32);
  if (bits != BitsFor(h.size, h.granularity)) return bad("bit count does not match the size");
  if (Get64(hdr + 40) != kHeaderSize || Get64(hdr + 48) != BitmapBytes(bits))
    return bad("bad bitmap placement");
  uint32_t idlen = Get32(hdr + 56);
  if (idlen > kMaxIdentity) return bad("identity too long");
  h.identity.assign(reinterpret_cast<const char*>(hdr + 64), idlen);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("cannot stat " + path, errno);
  if (static_cast<uint64_t>(st.st_size) < kHeaderSize + BitmapBytes(bits)) return bad("truncated");
  return h;
}

Result<std::unique_ptr<DurableBitmap>> DurableBitmap::Open(const std::string& path,
                                                           const MapHeader& expect) {
  CK_ASSIGN_OR_RETURN(MapHeader h, ReadHeader(path));
  if (h.kind != expect.kind)
    return Status::Usage(fmt::format("'{}' is a {} map, not a {} map", path, KindName(h.kind),
                                     KindName(expect.kind)));
  if (h.identity != expect.identity)
    return Status::Usage(
        fmt::format("'{}' belongs to {}, not to {}", path, h.identity, expect.identity));
  if (h.size != expect.size || h.granularity != expect.granularity)
    return Status::Usage(fmt::format(
        "'{}' maps {} bytes in {}-byte regions, but this export has {} bytes in {}-byte regions",
        path, h.size, h.granularity, expect.size, expect.granularity));
  std::unique_ptr<DurableBitmap> bm(new DurableBitmap(h.size, h.granularity));
  bm->fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!bm->fd_.valid()) return Status::FromErrno("cannot open " + path, errno);
  CK_RETURN_IF_ERROR(LockMap(bm->fd_.get(), path));
  bm->path_ = path;
  CK_RETURN_IF_ERROR(bm->LoadBits());
  return bm;
}

Status DurableBitmap::LoadBits() {
  std::vector<uint64_t> buf(nwords_);
  if (nwords_)
    CK_RETURN_IF_ERROR(PreadFull(fd_.get(), buf.data(), nwords_ * 8, kHeaderSize, path_, false));
  uint64_t count = 0;
  for (size_t i = 0; i < nwords_; ++i) {
    uint64_t w = buf[i];
    // Bits past the end never count (a damaged tail must not complete a copy).
    if (i == nwords_ - 1 && bits_ % 64) w &= (uint64_t{1} << (bits_ % 64)) - 1;
    words_[i].store(w, std::memory_order_relaxed);
    count += static_cast<uint64_t>(std::popcount(w));
  }
  count_.store(count, std::memory_order_release);
  return Status::Ok();
}

bool DurableBitmap::Set(uint64_t i) {
  uint64_t mask = uint64_t{1} << (i % 64);
  uint64_t old = words_[i / 64].fetch_or(mask, std::memory_order_acq_rel);
  if (old & mask) return false;
  count_.fetch_add(1, std::memory_order_acq_rel);
  if (fd_.valid()) {
    std::lock_guard<std::mutex> l(dirty_mu_);
    dirty_pages_.insert(i / 64 / kWordsPerPage);
  }
  return true;
}

namespace {

template <bool kWantSet>
uint64_t NextBit(const std::atomic<uint64_t>* words, uint64_t bits, uint64_t from, uint64_t limit) {
  if (limit > bits) limit = bits;
  for (uint64_t w = from / 64; w * 64 < limit; ++w) {
    uint64_t v = words[w].load(std::memory_order_acquire);
    if (!kWantSet) v = ~v;
    if (w == from / 64) v &= ~uint64_t{0} << (from % 64);
    if (v) {
      uint64_t i = w * 64 + static_cast<uint64_t>(std::countr_zero(v));
      return i < limit ? i : limit;
    }
  }
  return limit;
}

}  // namespace

uint64_t DurableBitmap::NextClear(uint64_t from, uint64_t limit) const {
  if (from >= bits_ || from >= limit) return std::min(limit, bits_);
  return NextBit<false>(words_.get(), bits_, from, limit);
}

uint64_t DurableBitmap::NextSet(uint64_t from, uint64_t limit) const {
  if (from >= bits_ || from >= limit) return std::min(limit, bits_);
  return NextBit<true>(words_.get(), bits_, from, limit);
}

DurableBitmap::Pending DurableBitmap::Capture() {
  Pending p;
  if (!fd_.valid()) return p;
  std::set<uint64_t> pages;
  {
    std::lock_guard<std::mutex> l(dirty_mu_);
    pages.swap(dirty_pages_);
  }
  for (uint64_t page : pages) {
    std::vector<uint64_t> words(kWordsPerPage, 0);
    uint64_t first = page * kWordsPerPage;
    for (uint64_t k = 0; k < kWordsPerPage && first + k < nwords_; ++k)
      words[k] = words_[first + k].load(std::memory_order_acquire);
    p.pages.emplace_back(page, std::move(words));
  }
  return p;
}

Status DurableBitmap::Persist(const Pending& pending) {
  if (!fd_.valid() || pending.pages.empty()) return Status::Ok();
  Status s;
  for (const auto& [page, words] : pending.pages) {
    s = PwriteFull(fd_.get(), words.data(), kPageBytes, kHeaderSize + page * kPageBytes, path_);
    if (!s.ok()) break;
  }
  if (s.ok() && ::fdatasync(fd_.get()) != 0)
    s = Status::FromErrno("cannot fdatasync " + path_, errno);
  if (!s.ok()) {
    std::lock_guard<std::mutex> l(dirty_mu_);
    for (const auto& pg : pending.pages) dirty_pages_.insert(pg.first);
  }
  return s;
}

Status DurableBitmap::Remove() {
  if (path_.empty()) return Status::Ok();
  fd_.Reset();
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno("cannot remove " + path_, errno);
  return FsyncDir(DirName(path_));
}

}  // namespace cloudkeep::nbd
