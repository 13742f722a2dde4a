#include "nbd/partition_table.h"

#include <fmt/format.h>

#include <cstring>

namespace cloudkeep::nbd {

namespace {

uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
uint64_t Le64(const uint8_t* p) {
  return static_cast<uint64_t>(Le32(p)) | static_cast<uint64_t>(Le32(p + 4)) << 32;
}

// Reads [off, off+n) if it lies within the device; false if it does not.
Result<bool> ReadAt(Backend& dev, uint64_t off, void* buf, uint64_t n) {
  if (off > dev.Size() || n > dev.Size() - off) return false;
  CK_RETURN_IF_ERROR(dev.Pread(buf, n, off));
  return true;
}

std::string GuidText(const uint8_t* g) {
  // Mixed-endian as GPT stores it: the first three groups are little-endian.
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:"
      "02x}"
      "{:02x}",
      g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
      g[15]);
}

bool IsExtended(uint8_t type) {
  return type == 0x05 || type == 0x0f || type == 0x85;
}

Status ReadGpt(Backend& dev, uint64_t sector, std::vector<Partition>* out, bool* found) {
  uint8_t hdr[92];
  CK_ASSIGN_OR_RETURN(bool ok, ReadAt(dev, sector, hdr, sizeof hdr));
  if (!ok || std::memcmp(hdr, "EFI PART", 8) != 0) return Status::Ok();
  *found = true;
  uint64_t entries_lba = Le64(hdr + 72);
  uint32_t count = Le32(hdr + 80), esize = Le32(hdr + 84);
  if (esize < 128 || esize > 4096 || count > 1024) return Status::Ok();
  for (uint32_t i = 0; i < count && i < 128; ++i) {
    std::vector<uint8_t> e(esize);
    CK_ASSIGN_OR_RETURN(bool in,
                        ReadAt(dev, entries_lba * sector + uint64_t{i} * esize, e.data(), esize));
    if (!in) break;
    static const uint8_t kZero[16] = {};
    if (std::memcmp(e.data(), kZero, 16) == 0) continue;
    uint64_t first = Le64(e.data() + 32), last = Le64(e.data() + 40);
    if (last < first || first > dev.Size() / sector) continue;
    Partition p;
    p.number = static_cast<int>(i) + 1;
    p.offset = first * sector;
    p.size = std::min((last - first + 1) * sector, dev.Size() - p.offset);
    p.scheme = "gpt";
    p.type = GuidText(e.data());
    out->push_back(p);
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ProbeFilesystem(Backend& dev, uint64_t offset, uint64_t size) {
  auto within = [&](uint64_t at, uint64_t n) { return at <= size && n <= size - at; };
  uint8_t buf[8];
  if (within(1080, 2)) {
    CK_RETURN_IF_ERROR(dev.Pread(buf, 2, offset + 1080));
    if (buf[0] == 0x53 && buf[1] == 0xef) return std::string("ext4");
  }
  if (within(0, 4)) {
    CK_RETURN_IF_ERROR(dev.Pread(buf, 4, offset));
    if (std::memcmp(buf, "XFSB", 4) == 0) return std::string("xfs");
  }
  if (within(0x10040, 8)) {
    CK_RETURN_IF_ERROR(dev.Pread(buf, 8, offset + 0x10040));
    if (std::memcmp(buf, "_BHRfS_M", 8) == 0) return std::string("btrfs");
  }
  if (within(0, 512)) {
    uint8_t boot[512];
    CK_RETURN_IF_ERROR(dev.Pread(boot, 512, offset));
    if (boot[510] == 0x55 && boot[511] == 0xaa &&
        (std::memcmp(boot + 82, "FAT32   ", 8) == 0 || std::memcmp(boot + 54, "FAT16   ", 8) == 0 ||
         std::memcmp(boot + 54, "FAT12   ", 8) == 0))
      return std::string("vfat");
  }
  return std::string();
}

Result<std::vector<Partition>> ReadPartitions(Backend& dev) {
  std::vector<Partition> out;
  // A file system on the whole device has no partition table (a FAT boot
  // sector also ends in 55 AA).
  CK_ASSIGN_OR_RETURN(std::string fs, ProbeFilesystem(dev, 0, dev.Size()));
  if (!fs.empty()) return out;
  uint8_t mbr[512];
  CK_ASSIGN_OR_RETURN(bool have, ReadAt(dev, 0, mbr, sizeof mbr));
  if (!have || mbr[510] != 0x55 || mbr[511] != 0xaa) return out;
  bool gpt = false;
  for (int i = 0; i < 4; ++i)
    if (mbr[446 + 16 * i + 4] == 0xee) gpt = true;
  if (gpt) {
    bool found = false;
    CK_RETURN_IF_ERROR(ReadGpt(dev, 512, &out, &found));
    if (!found) CK_RETURN_IF_ERROR(ReadGpt(dev, 4096, &out, &found));
    return out;
  }
  const uint64_t sector = 512;
  uint64_t ext_start = 0;
  for (int i = 0; i < 4; ++i) {
    const uint8_t* e = mbr + 446 + 16 * i;
    uint8_t type = e[4];
    uint64_t lba = Le32(e + 8), count = Le32(e + 12);
    if (type == 0 || count == 0 || lba * sector >= dev.Size()) continue;
    if (IsExtended(type)) {
      if (!ext_start) ext_start = lba;
      continue;
    }
    Partition p;
    p.number = i + 1;
    p.offset = lba * sector;
    p.size = std::min(count * sector, dev.Size() - p.offset);
    p.scheme = "mbr";
    p.type = fmt::format("0x{:02x}", type);
    out.push_back(p);
  }
  // Logical partitions: a chain of extended boot records inside the extended partition.
  uint64_t ebr = ext_start;
  for (int n = 5; ebr && n < 5 + 128; ++n) {
    uint8_t rec[512];
    CK_ASSIGN_OR_RETURN(bool in, ReadAt(dev, ebr * sector, rec, sizeof rec));
    if (!in || rec[510] != 0x55 || rec[511] != 0xaa) break;
    const uint8_t* e = rec + 446;
    uint64_t lba = Le32(e + 8), count = Le32(e + 12);
    if (e[4] != 0 && count && (ebr + lba) * sector < dev.Size()) {
      Partition p;
      p.number = n;
      p.offset = (ebr + lba) * sector;
      p.size = std::min(count * sector, dev.Size() - p.offset);
      p.scheme = "mbr";
      p.type = fmt::format("0x{:02x}", e[4]);
      out.push_back(p);
    }
    const uint8_t* next = rec + 446 + 16;
    uint64_t next_lba = Le32(next + 8);
    if (!IsExtended(next[4]) || next_lba == 0) break;
    uint64_t following = ext_start + next_lba;
    if (following <= ebr) break;  // chains only go forward
    ebr = following;
  }
  return out;
}

std::string ReadOnlyMountOptions(const std::string& fstype) {
  if (fstype == "ext4") return "ro,noload";
  if (fstype == "xfs") return "ro,norecovery,nouuid";
  if (fstype == "btrfs") return "ro,rescue=nologreplay";
  return "ro";
}

}  // namespace cloudkeep::nbd
