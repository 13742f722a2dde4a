#include "mirror/bitmap.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace cloudkeep::mirror {

Bitmap::Bitmap(uint64_t device_size, uint64_t granularity)
    : device_size_(device_size),
      granularity_(granularity),
      bits_((device_size + granularity - 1) / granularity),
      words_((bits_ + 63) / 64, 0) {}

uint64_t Bitmap::StorageBytes() const {
  uint64_t bytes = words_.size() * 8;
  return std::max<uint64_t>(kPageBytes, (bytes + kPageBytes - 1) / kPageBytes * kPageBytes);
}

void Bitmap::SetBit(uint64_t bit) {
  uint64_t m = 1ull << (bit % 64);
  if (!(words_[bit / 64] & m)) {
    words_[bit / 64] |= m;
    Touch(bit);
  }
}

void Bitmap::ClearBit(uint64_t bit) {
  uint64_t m = 1ull << (bit % 64);
  if (words_[bit / 64] & m) {
    words_[bit / 64] &= ~m;
    Touch(bit);
  }
}

bool Bitmap::Test(uint64_t bit) const {
  return bit < bits_ && (words_[bit / 64] >> (bit % 64)) & 1;
}

uint64_t Bitmap::Set(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= device_size_) return 0;
  uint64_t end = std::min(offset + length, device_size_);
  uint64_t first = offset / granularity_, last = (end - 1) / granularity_;
  uint64_t n = 0;
  for (uint64_t b = first; b <= last; b++)
    if (!Test(b)) {
      SetBit(b);
      n++;
    }
  return n;
}

uint64_t Bitmap::Clear(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= device_size_) return 0;
  uint64_t end = std::min(offset + length, device_size_);
  uint64_t first = (offset + granularity_ - 1) / granularity_;
  uint64_t n = 0;
  for (uint64_t b = first; b < bits_; b++) {
    uint64_t bend = BitOffset(b) + BitLength(b);
    if (bend > end) break;
    if (Test(b)) {
      ClearBit(b);
      n++;
    }
  }
  return n;
}

bool Bitmap::AnySet(uint64_t offset, uint64_t length) const {
  if (length == 0 || offset >= device_size_) return false;
  uint64_t end = std::min(offset + length, device_size_);
  for (uint64_t b = offset / granularity_; b <= (end - 1) / granularity_; b++)
    if (Test(b)) return true;
  return false;
}

void Bitmap::ClearAll() {
  for (uint64_t p = 0; p < StorageBytes() / kPageBytes; p++) dirty_pages_.insert(p);
  std::fill(words_.begin(), words_.end(), 0);
}

void Bitmap::SetAll() {
  ClearAll();
  for (uint64_t b = 0; b < bits_; b++) words_[b / 64] |= 1ull << (b % 64);
}

uint64_t Bitmap::Count() const {
  uint64_t n = 0;
  for (uint64_t w : words_) n += static_cast<uint64_t>(std::popcount(w));
  return n;
}

uint64_t Bitmap::BitLength(uint64_t bit) const {
  uint64_t off = BitOffset(bit);
  return std::min(granularity_, device_size_ - off);
}

uint64_t Bitmap::DirtyBytes() const {
  uint64_t n = Count() * granularity_;
  if (bits_ && Test(bits_ - 1)) n -= granularity_ - BitLength(bits_ - 1);
  return n;
}

uint64_t Bitmap::NextSet(uint64_t from) const {
  for (uint64_t w = from / 64; w < words_.size(); w++) {
    uint64_t word = words_[w];
    if (w == from / 64) word &= ~0ull << (from % 64);
    if (word) {
      uint64_t b = w * 64 + static_cast<uint64_t>(std::countr_zero(word));
      return b < bits_ ? b : bits_;
    }
  }
  return bits_;
}

void Bitmap::ForEachRun(uint64_t max_bytes,
                        const std::function<bool(uint64_t off, uint64_t len)>& fn,
                        uint64_t from) const {
  uint64_t b = NextSet(from / granularity_);
  while (b < bits_) {
    uint64_t off = BitOffset(b), len = BitLength(b);
    uint64_t next = b + 1;
    while (next < bits_ && Test(next) && len + BitLength(next) <= max_bytes) {
      len += BitLength(next);
      next++;
    }
    if (!fn(off, len)) return;
    b = NextSet(next);
  }
}

std::vector<uint8_t> Bitmap::Serialize() const {
  std::vector<uint8_t> out(StorageBytes(), 0);
  for (size_t i = 0; i < words_.size(); i++)
    for (int k = 0; k < 8; k++) out[i * 8 + k] = static_cast<uint8_t>(words_[i] >> (8 * k));
  return out;
}

bool Bitmap::Load(const uint8_t* data, size_t size) {
  if (size < (bits_ + 7) / 8) return false;
  for (size_t i = 0; i < words_.size(); i++) {
    uint64_t w = 0;
    for (int k = 0; k < 8; k++) {
      size_t at = i * 8 + k;
      if (at < size) w |= static_cast<uint64_t>(data[at]) << (8 * k);
    }
    words_[i] = w;
  }
  // Bits past the device end never count.
  if (bits_ % 64) words_.back() &= (1ull << (bits_ % 64)) - 1;
  return true;
}

bool Bitmap::Union(const Bitmap& other) {
  if (other.bits_ != bits_ || other.granularity_ != granularity_) return false;
  for (size_t i = 0; i < words_.size(); i++) {
    uint64_t add = other.words_[i] & ~words_[i];
    if (add) {
      words_[i] |= add;
      dirty_pages_.insert(PageOf(i * 64));
    }
  }
  return true;
}

std::set<uint64_t> Bitmap::TakeDirtyPages() {
  std::set<uint64_t> out;
  out.swap(dirty_pages_);
  return out;
}

std::vector<uint8_t> Bitmap::PageBytes(uint64_t page) const {
  std::vector<uint8_t> out(kPageBytes, 0);
  uint64_t first_word = page * kPageBytes / 8;
  for (uint64_t i = 0; i < kPageBytes / 8 && first_word + i < words_.size(); i++)
    for (int k = 0; k < 8; k++)
      out[i * 8 + k] = static_cast<uint8_t>(words_[first_word + i] >> (8 * k));
  return out;
}

}  // namespace cloudkeep::mirror
