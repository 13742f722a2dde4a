#include "providers/local/manifest.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <zstd.h>

#include <cstring>

#include "core/output.h"

namespace cloudkeep::local {

namespace {

constexpr const char* kFormat = "cloudkeep-manifest-1";

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Unbase64(const std::string& in) {
  if (in.size() % 4) return Status::Failure("chunk table is not base64");
  std::string out(in.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return Status::Failure("chunk table is not base64");
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts padding as zero bytes.
  if (!in.empty() && in.back() == '=') --len;
  if (in.size() > 1 && in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

}  // namespace

std::string EncodeManifest(const Manifest& m) {
  Json j = snapshot::SnapshotToJson(m.snapshot);
  Json doc;
  doc["format"] = kFormat;
  for (auto& [k, v] : j.items()) doc[k] = v;
  doc["chunk_size"] = m.chunk_size;
  if (!m.source_identity.empty()) doc["source_identity"] = m.source_identity;
  std::string raw;
  raw.reserve(m.chunks.size() * 32);
  for (const auto& h : m.chunks) raw.append(reinterpret_cast<const char*>(h.data()), 32);
  std::string packed(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compress(packed.data(), packed.size(), raw.data(), raw.size(), 3);
  packed.resize(ZSTD_isError(n) ? 0 : n);
  doc["chunk_count"] = m.chunks.size();
  doc["chunk_table_zstd_base64"] = Base64(packed);
  doc["chunk_table_sha256"] = HashHex(Sha256(raw.data(), raw.size()));
  return doc.dump(1) + "\n";
}

Result<Manifest> DecodeManifest(const std::string& bytes) {
  auto bad = [](const std::string& why) { return Status::Failure("bad manifest: " + why); };
  Json doc = Json::parse(bytes, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return bad("not JSON");
  try {
    if (doc.value("format", "") != kFormat) return bad("unknown format");
    Manifest m;
    auto& s = m.snapshot;
    s.id = doc.at("id").get<std::string>();
    if (!snapshot::IsSnapshotId(s.id)) return bad("bad id");
    s.volume_id = doc.at("volume_id").get<std::string>();
    s.volume_device = doc.value("volume_device", "");
    auto created = ParseRfc3339(doc.at("created").get<std::string>());
    if (!created.ok()) return bad("bad time");
    s.created = *created;
    s.size_bytes = doc.at("size_bytes").get<uint64_t>();
    if (doc.contains("stored_bytes")) s.stored_bytes = doc["stored_bytes"].get<uint64_t>();
    if (doc.contains("new_bytes")) s.new_bytes = doc["new_bytes"].get<uint64_t>();
    if (doc.contains("chunks")) s.chunks = doc["chunks"].get<uint64_t>();
    auto c = snapshot::ParseConsistency(doc.value("consistency", "crash"));
    if (!c) return bad("bad consistency");
    s.consistency = *c;
    s.description = doc.value("description", "");
    // value() returns a copy: keep it alive while iterating.
    const Json tags = doc.value("tags", Json::object());
    for (auto& [k, v] : tags.items()) s.tags[k] = v.get<std::string>();
    const Json database = doc.value("database", Json::object());
    for (auto& [k, v] : database.items()) s.database[k] = v.get<std::string>();
    if (doc.contains("freeze_us")) s.freeze_us = doc["freeze_us"].get<int64_t>();
    if (doc.contains("lock_us")) s.lock_us = doc["lock_us"].get<int64_t>();
    m.chunk_size = doc.at("chunk_size").get<uint64_t>();
    m.source_identity = doc.value("source_identity", "");
    if (m.chunk_size < 4096 || m.chunk_size > (64u << 20)) return bad("bad chunk size");
    uint64_t count = doc.at("chunk_count").get<uint64_t>();
    if (count != (s.size_bytes + m.chunk_size - 1) / m.chunk_size)
      return bad("chunk count does not match size");
    if (count > (1u << 26)) return bad("volume too large");
    CK_ASSIGN_OR_RETURN(std::string packed,
                        Unbase64(doc.at("chunk_table_zstd_base64").get<std::string>()));
    unsigned long long expect = ZSTD_getFrameContentSize(packed.data(), packed.size());
    if (expect != count * 32) return bad("chunk table size");
    std::string raw(count * 32, '\0');
    size_t n = ZSTD_decompress(raw.data(), raw.size(), packed.data(), packed.size());
    if (ZSTD_isError(n) || n != raw.size()) return bad("chunk table does not decompress");
    if (HashHex(Sha256(raw.data(), raw.size())) != doc.at("chunk_table_sha256").get<std::string>())
      return bad("chunk table checksum mismatch");
    m.chunks.resize(count);
    for (uint64_t i = 0; i < count; ++i) std::memcpy(m.chunks[i].data(), raw.data() + i * 32, 32);
    return m;
  } catch (const std::exception& e) {
    return bad(e.what());
  }
}

}  // namespace cloudkeep::local
