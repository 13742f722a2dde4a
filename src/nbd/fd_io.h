// Positional I/O on a descriptor that retries EINTR and short transfers:
// the small helpers the overlay, hydrate and map code share.
//
// Thread safety: pure functions over the descriptor (pread/pwrite).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/status.h"

namespace cloudkeep::nbd {

// Reads exactly n bytes at `off`. Past the end of the file the rest reads as
// zeroes when `zero_past_eof`, else it is an error. Errors keep errno (EIO
// stays EIO for the NBD client).
inline Status PreadFull(int fd, void* buf, uint64_t n, uint64_t off, const std::string& what,
                        bool zero_past_eof = true) {
  auto* p = static_cast<char*>(buf);
  uint64_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno("cannot read " + what, errno);
    if (r == 0) {
      if (!zero_past_eof) return Status::FromErrno(what + " is truncated", EIO);
      std::memset(p + done, 0, n - done);
      return Status::Ok();
    }
    done += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

inline Status PwriteFull(int fd, const void* buf, uint64_t n, uint64_t off,
                         const std::string& what) {
  const auto* p = static_cast<const char*>(buf);
  uint64_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd, p + done, n - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno("cannot write " + what, errno);
    done += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

}  // namespace cloudkeep::nbd
