#include "providers/local/exporter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "core/fs.h"
#include "core/log.h"
#include "core/parallel.h"

namespace cloudkeep::local {

std::vector<std::pair<uint64_t, uint64_t>> DataRanges(int fd, uint64_t size) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  off_t pos = 0;
  const off_t end = static_cast<off_t>(size);
  while (pos < end) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole remains
      // No hole support (block devices, some filesystems): everything is data.
      out.clear();
      out.emplace_back(0, size);
      return out;
    }
    if (data >= end) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0 || hole > end) hole = end;
    out.emplace_back(static_cast<uint64_t>(data), static_cast<uint64_t>(hole));
    pos = hole;
  }
  return out;
}

Result<ExportResult> ExportVolume(LocalStore& store, const std::string& path, uint64_t size,
                                  int threads, int zstd_level, const std::string& progress_label) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("cannot open " + path, errno);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  const uint64_t cs = store.chunk_size();
  const uint64_t count = (size + cs - 1) / cs;
  auto ranges = DataRanges(fd.get(), size);

  // Which chunks overlap data: a chunk entirely in a hole is zero without a read.
  std::vector<bool> has_data(count, false);
  for (const auto& [b, e] : ranges) {
    for (uint64_t i = b / cs; i < count && i * cs < e; ++i) has_data[i] = true;
  }

  ExportResult result;
  result.table.assign(count, ChunkHash{});
  std::atomic<uint64_t> done_bytes{0}, new_bytes{0}, read_bytes{0};
  log::Progress progress(progress_label);

  // One read buffer per worker thread, reused for every chunk it takes.
  auto export_chunk = [&](size_t i) -> Status {
    thread_local std::string buf;
    if (buf.size() < cs) buf.resize(cs);
    uint64_t off = i * cs;
    uint64_t len = std::min(cs, size - off);
    if (has_data[i]) {
      uint64_t got = 0;
      while (got < len) {
        ssize_t n = ::pread(fd.get(), buf.data() + got, len - got, static_cast<off_t>(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::FromErrno("cannot read " + path, errno);
        if (n == 0) return Status::Failure(path + " is shorter than expected (did it shrink?)");
        got += static_cast<uint64_t>(n);
      }
      read_bytes += len;
      if (!IsAllZero(buf.data(), len)) {
        ChunkHash h = Sha256(buf.data(), len);
        CK_ASSIGN_OR_RETURN(uint64_t staged,
                            store.chunks().Stage(h, std::string_view(buf.data(), len), zstd_level));
        new_bytes += staged;
        result.table[i] = h;
      }
    }
    progress.Update(done_bytes += len, size);
    return Status::Ok();
  };
  Status s = ParallelFor(count, {WorkerCount(threads)}, export_chunk);
  progress.Finish();
  if (!s.ok()) {
    store.chunks().DiscardStaged();
    return s;
  }
  result.stats.new_bytes = new_bytes;
  result.stats.read_bytes = read_bytes;
  return result;
}

}  // namespace cloudkeep::local
