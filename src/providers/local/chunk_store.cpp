#include "providers/local/chunk_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "core/fs.h"
#include "providers/local/object_backend.h"
#include "providers/local/store_layout.h"

namespace cloudkeep::local {

namespace {

// Chunk file header: magic, codec, reserved, uncompressed length (LE).
constexpr char kMagic[4] = {'C', 'K', 'C', '1'};
constexpr uint8_t kCodecRaw = 0;
constexpr uint8_t kCodecZstd = 1;
constexpr size_t kHeaderSize = 16;

void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t GetLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// One compression and one decompression context per worker thread, freed
// when the thread ends.
struct ZstdContexts {
  ZSTD_CCtx* cctx = nullptr;
  ZSTD_DCtx* dctx = nullptr;
  ~ZstdContexts() {
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
  }
};
thread_local ZstdContexts tls_zstd;

}  // namespace

std::string HashHex(const ChunkHash& h) {
  static const char* kHex = "0123456789abcdef";
  std::string s(64, '0');
  for (size_t i = 0; i < 32; ++i) {
    s[2 * i] = kHex[h[i] >> 4];
    s[2 * i + 1] = kHex[h[i] & 15];
  }
  return s;
}

bool HashFromHex(std::string_view hex, ChunkHash* out) {
  if (hex.size() != 64) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

bool IsZeroHash(const ChunkHash& h) {
  for (uint8_t b : h)
    if (b) return false;
  return true;
}

ChunkHash Sha256(const void* data, size_t size) {
  ChunkHash h{};
  unsigned int len = 0;
  // EVP picks the SHA-NI implementation on CPUs that have it.
  EVP_Digest(data, size, h.data(), &len, EVP_sha256(), nullptr);
  return h;
}

bool IsAllZero(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  // Compare the buffer with itself shifted by 16 bytes: memcmp is vectorised.
  if (size < 16) {
    for (size_t i = 0; i < size; ++i)
      if (p[i]) return false;
    return true;
  }
  for (size_t i = 0; i < 16; ++i)
    if (p[i]) return false;
  return std::memcmp(p, p + 16, size - 16) == 0;
}

ChunkStore::ChunkStore(std::string root) : root_(std::move(root)) {}

std::string ChunkStore::PathOf(const ChunkHash& h) const {
  return layout::KeyPath(root_, layout::ChunkKey(h));
}

void ChunkStore::SetRemote(ObjectBackend* backend, std::map<ChunkHash, uint64_t> present) {
  std::lock_guard<std::mutex> lock(mu_);
  remote_ = backend;
  remote_present_ = std::move(present);
}

uint64_t ChunkStore::StoredSize(const ChunkHash& h) const {
  if (remote_) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = remote_present_.find(h);
    return it == remote_present_.end() ? 0 : it->second;
  }
  struct stat st {};
  if (::stat(PathOf(h).c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

Result<uint64_t> ChunkStore::Stage(const ChunkHash& h, std::string_view data, int zstd_level) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (staged_.count(h)) return uint64_t{0};
  }
  if (Exists(h)) return uint64_t{0};
  {
    // Claim it first so two workers with equal chunks write it once.
    std::lock_guard<std::mutex> lock(mu_);
    if (!staged_.insert(h).second) return uint64_t{0};
  }
  if (!tls_zstd.cctx) tls_zstd.cctx = ZSTD_createCCtx();
  std::string buf(kHeaderSize + ZSTD_compressBound(data.size()), '\0');
  auto* hdr = reinterpret_cast<uint8_t*>(buf.data());
  size_t csize = ZSTD_compressCCtx(tls_zstd.cctx, buf.data() + kHeaderSize,
                                   buf.size() - kHeaderSize, data.data(), data.size(), zstd_level);
  uint8_t codec = kCodecZstd;
  if (ZSTD_isError(csize) || csize >= data.size()) {
    // Incompressible (random or already compressed): keep it raw, reads stay cheap.
    codec = kCodecRaw;
    std::memcpy(buf.data() + kHeaderSize, data.data(), data.size());
    csize = data.size();
  }
  std::memcpy(hdr, kMagic, 4);
  hdr[4] = codec;
  hdr[5] = hdr[6] = hdr[7] = 0;
  PutLe64(hdr + 8, data.size());
  buf.resize(kHeaderSize + csize);

  if (remote_) {
    auto put = remote_->PutIfAbsent(layout::ChunkKey(h), buf);
    std::lock_guard<std::mutex> lock(mu_);
    if (!put.ok()) {
      staged_.erase(h);
      return put.status();
    }
    remote_present_[h] = buf.size();
    // Already there (another host, or an interrupted run of ours): nothing added.
    return *put ? static_cast<uint64_t>(buf.size()) : uint64_t{0};
  }
  std::string tmp = layout::KeyPath(root_, layout::StagedChunkKey(h));
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno("cannot create " + tmp, errno);
  Status s = WriteAll(fd.get(), buf.data(), buf.size(), tmp);
  if (!s.ok()) {
    fd.Reset();
    ::unlink(tmp.c_str());
    std::lock_guard<std::mutex> lock(mu_);
    staged_.erase(h);
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  staged_order_.push_back(h);
  return static_cast<uint64_t>(buf.size());
}

Status ChunkStore::Publish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (remote_) {
    // Every chunk went up in Stage; what is not referenced by a manifest is
    // collected after a failed run (the run marker says so).
    staged_order_.clear();
    staged_.clear();
    return Status::Ok();
  }
  std::set<std::string> dirs;
  for (const auto& h : staged_order_) {
    std::string dir = layout::KeyPath(root_, layout::ChunkFanoutDir(h));
    if (!dirs.count(dir)) {
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        return Status::FromErrno("cannot create " + dir, errno);
      dirs.insert(dir);
    }
    std::string tmp = layout::KeyPath(root_, layout::StagedChunkKey(h));
    std::string final_path = PathOf(h);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0)
      return Status::FromErrno("cannot publish chunk " + final_path, errno);
  }
  for (const auto& dir : dirs) CK_RETURN_IF_ERROR(FsyncDir(dir));
  if (!dirs.empty()) CK_RETURN_IF_ERROR(FsyncDir(layout::KeyPath(root_, layout::kChunksPrefix)));
  staged_order_.clear();
  staged_.clear();
  return Status::Ok();
}

void ChunkStore::DiscardStaged() {
  std::lock_guard<std::mutex> lock(mu_);
  if (remote_) {
    staged_order_.clear();
    staged_.clear();
    return;
  }
  for (const auto& h : staged_order_)
    ::unlink(layout::KeyPath(root_, layout::StagedChunkKey(h)).c_str());
  staged_order_.clear();
  staged_.clear();
}

Result<std::string> ChunkStore::Get(const ChunkHash& h) const {
  if (remote_) {
    CK_ASSIGN_OR_RETURN(std::optional<std::string> stored, remote_->Get(layout::ChunkKey(h)));
    if (!stored)
      return Status::Failure(
          fmt::format("chunk {}: missing from {}", HashHex(h), remote_->Describe()));
    return Decode(h, *stored);
  }
  std::string path = PathOf(h);
  auto raw = ReadFile(path);
  if (!raw.ok()) return raw.status();
  return Decode(h, *raw);
}

Result<std::string> ChunkStore::Decode(const ChunkHash& h, const std::string& f) const {
  auto corrupt = [&](const std::string& why) {
    return Status::Failure("chunk " + HashHex(h) + ": " + why);
  };
  if (f.size() < kHeaderSize || std::memcmp(f.data(), kMagic, 4) != 0) return corrupt("bad header");
  const auto* hdr = reinterpret_cast<const uint8_t*>(f.data());
  uint64_t len = GetLe64(hdr + 8);
  if (len > (64u << 20)) return corrupt("implausible length");
  std::string out;
  if (hdr[4] == kCodecRaw) {
    if (f.size() - kHeaderSize != len) return corrupt("truncated");
    out.assign(f.data() + kHeaderSize, len);
  } else if (hdr[4] == kCodecZstd) {
    if (!tls_zstd.dctx) tls_zstd.dctx = ZSTD_createDCtx();
    out.resize(len);
    size_t n = ZSTD_decompressDCtx(tls_zstd.dctx, out.data(), len, f.data() + kHeaderSize,
                                   f.size() - kHeaderSize);
    if (ZSTD_isError(n) || n != len) return corrupt("does not decompress");
  } else {
    return corrupt("unknown codec");
  }
  if (Sha256(out.data(), out.size()) != h) return corrupt("hash mismatch");
  return out;
}

Status ChunkStore::Remove(const ChunkHash& h) {
  if (remote_) {
    CK_RETURN_IF_ERROR(remote_->Delete(layout::ChunkKey(h)));
    std::lock_guard<std::mutex> lock(mu_);
    remote_present_.erase(h);
    return Status::Ok();
  }
  if (::unlink(PathOf(h).c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno("cannot remove chunk", errno);
  return Status::Ok();
}

std::vector<ChunkHash> ChunkStore::List() const {
  std::vector<ChunkHash> out;
  if (remote_) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [h, size] : remote_present_) out.push_back(h);
    return out;
  }
  const std::string prefix(layout::kChunksPrefix);
  for (const auto& fanout : ListDir(layout::KeyPath(root_, prefix))) {
    for (const auto& name : ListDir(layout::KeyPath(root_, prefix + fanout))) {
      if (auto h = layout::ParseChunkKey(prefix + fanout + "/" + name)) out.push_back(*h);
    }
  }
  return out;
}

}  // namespace cloudkeep::local
