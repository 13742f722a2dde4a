// Bitmap: the per-peer dirty bitmap, one bit per `granularity` bytes of the
// device. A set bit means "the peer may lack this region": it is set before
// a write that the peer will not get (disconnected, timed out, unacked at a
// disconnect) and cleared once the peer has acknowledged the region during
// resync. Persistence is the Metadata's job (metadata.h); this class is the
// in-memory set with the arithmetic, plus which 4 KiB pages changed.
//
// Thread safety: none; Metadata serializes access.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace cloudkeep::mirror {

class Bitmap {
 public:
  static constexpr uint64_t kPageBytes = 4096;

  Bitmap() = default;
  Bitmap(uint64_t device_size, uint64_t granularity);

  uint64_t granularity() const { return granularity_; }
  uint64_t bits() const { return bits_; }
  uint64_t device_size() const { return device_size_; }
  // Bytes of the on-disk form: ceil(bits/8) rounded up to whole pages.
  uint64_t StorageBytes() const;

  // Sets every bit that [offset, offset+length) touches; returns how many were newly set.
  uint64_t Set(uint64_t offset, uint64_t length);
  // Clears the bits wholly inside [offset, offset+length) (a partial region stays dirty).
  uint64_t Clear(uint64_t offset, uint64_t length);
  void SetBit(uint64_t bit);
  void ClearBit(uint64_t bit);
  bool Test(uint64_t bit) const;
  bool AnySet(uint64_t offset, uint64_t length) const;
  void ClearAll();
  void SetAll();
  uint64_t Count() const;
  // Bytes of the device covered by set bits (the last region counts only to the device end).
  uint64_t DirtyBytes() const;
  // Byte range of one bit, clipped to the device.
  uint64_t BitOffset(uint64_t bit) const { return bit * granularity_; }
  uint64_t BitLength(uint64_t bit) const;

  // Runs of set bits as byte ranges, each at most max_bytes long, starting at or after `from`.
  void ForEachRun(uint64_t max_bytes, const std::function<bool(uint64_t off, uint64_t len)>& fn,
                  uint64_t from = 0) const;
  // The first set bit at or after `from`, or bits() when none.
  uint64_t NextSet(uint64_t from) const;

  // On-disk form: little-endian 64-bit words, bit i of the device is bit (i%64) of word i/64.
  std::vector<uint8_t> Serialize() const;
  // Replaces the bits with `data` (of StorageBytes() or at least ceil(bits/8) bytes); false if too
  // short.
  bool Load(const uint8_t* data, size_t size);
  // ORs another bitmap of the same geometry in; false if the geometry differs.
  bool Union(const Bitmap& other);

  // Pages (index of kPageBytes in the on-disk form) changed since the last TakeDirtyPages().
  std::set<uint64_t> TakeDirtyPages();
  // Page index holding `bit`.
  static uint64_t PageOf(uint64_t bit) { return bit / (kPageBytes * 8); }
  // The bytes of one on-disk page.
  std::vector<uint8_t> PageBytes(uint64_t page) const;

 private:
  void Touch(uint64_t bit) { dirty_pages_.insert(PageOf(bit)); }
  uint64_t device_size_ = 0;
  uint64_t granularity_ = 1;
  uint64_t bits_ = 0;
  std::vector<uint64_t> words_;
  std::set<uint64_t> dirty_pages_;
};

}  // namespace cloudkeep::mirror
