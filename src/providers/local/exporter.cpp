#include "providers/local/exporter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <set>
#include <thread>

#include "core/fs.h"
#include "core/log.h"

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
  std::atomic<uint64_t> next{0}, done_bytes{0}, new_bytes{0}, read_bytes{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  Status first_error;
  log::Progress progress(progress_label);

  auto worker = [&]() {
    std::string buf(cs, '\0');
    for (;;) {
      if (failed.load()) return;
      uint64_t i = next.fetch_add(1);
      if (i >= count) return;
      uint64_t off = i * cs;
      uint64_t len = std::min(cs, size - off);
      if (has_data[i]) {
        uint64_t got = 0;
        while (got < len) {
          ssize_t n = ::pread(fd.get(), buf.data() + got, len - got, static_cast<off_t>(off + got));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            std::lock_guard<std::mutex> lock(err_mu);
            if (!failed.exchange(true))
              first_error =
                  n < 0 ? Status::FromErrno("cannot read " + path, errno)
                        : Status::Failure(path + " is shorter than expected (did it shrink?)");
            return;
          }
          got += static_cast<uint64_t>(n);
        }
        read_bytes += len;
        if (!IsAllZero(buf.data(), len)) {
          ChunkHash h = Sha256(buf.data(), len);
          auto staged = store.chunks().Stage(h, std::string_view(buf.data(), len), zstd_level);
          if (!staged.ok()) {
            std::lock_guard<std::mutex> lock(err_mu);
            if (!failed.exchange(true)) first_error = staged.status();
            return;
          }
          new_bytes += *staged;
          result.table[i] = h;
        }
      }
      progress.Update(done_bytes += len, size);
    }
  };
  int n =
      threads > 0 ? threads : static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  progress.Finish();
  if (failed) {
    store.chunks().DiscardStaged();
    return first_error;
  }
  result.stats.new_bytes = new_bytes;
  result.stats.read_bytes = read_bytes;
  return result;
}

}  // namespace cloudkeep::local
