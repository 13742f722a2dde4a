// Backend: what one NBD export serves.
//
// The NBD server core (server.h) speaks the protocol; a Backend holds the
// bytes. The interface follows nbdkit's plugin interface: a size, pread, and
// optional pwrite, flush, trim, zero, extents and cache, each announced by a
// capability so that the server advertises only what the backend really does
// (NetworkBlockDevice/nbd doc/proto.md, "Transmission flags"). A snapshot in
// the store, a copy-on-write overlay, a hydrating copy and a mirrored device
// are all Backends.
//
// Errors are Status values (Status::FromErrno keeps the errno). The server maps Status::sys_errno()
// to the NBD error sent to the client (EIO when there is none): ENOSPC, EPERM, EINVAL, EOVERFLOW
// and ENOTSUP (the answer to a FAST_ZERO that would not be fast) keep their meaning; anything else
// becomes EIO.
//
// Durability contract, which the server relies on to honour FLUSH and FUA
// (proto.md, "Ordering of messages and writes"):
//  - Flush() returns only when every write that returned before Flush() was
//    called is on non-volatile storage;
//  - a write called with fua = true returns only when its own data is.
// caps().multi_conn is true only when one Flush() covers writes made
// through every connection to this backend (a shared file descriptor does;
// a per-connection cache would not).
//
// Thread safety: every method may be called from several threads at once,
// for overlapping or disjoint ranges. Offsets and counts are already checked
// against size() by the server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace cloudkeep::nbd {

struct BackendCaps {
  bool writable = false;    // pwrite (and trim/zero if set below) allowed
  bool flush = false;       // Flush() makes data durable (advertised on writable exports)
  bool fua = false;         // Pwrite/Trim/Zero honour fua
  bool trim = false;        // Trim() deallocates
  bool zero = false;        // Zero() is implemented (else the server writes zero buffers)
  bool fast_zero = false;   // Zero(fast=true) can answer ENOTSUP instead of being slow
  bool extents = false;     // Extents() knows holes and zeroes (base:allocation)
  bool cache = false;       // Cache() prefetches
  bool multi_conn = false;  // see the durability contract above
  bool rotational = false;
};

// One extent of base:allocation (proto.md, "base:allocation metadata context").
struct Extent {
  static constexpr uint32_t kHole = 1;  // NBD_STATE_HOLE
  static constexpr uint32_t kZero = 2;  // NBD_STATE_ZERO
  uint64_t length = 0;
  uint32_t flags = 0;
};

// Block size constraints sent in NBD_INFO_BLOCK_SIZE (proto.md "Size constraints").
struct BlockSize {
  uint32_t minimum = 1;
  uint32_t preferred = 4096;
  uint32_t maximum = 32 * 1024 * 1024;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual uint64_t Size() const = 0;
  virtual BackendCaps Caps() const = 0;
  virtual BlockSize BlockSizes() const { return BlockSize{}; }
  // One line shown by NBD_INFO_DESCRIPTION and logs ("snapshot snap-… of /dev/sdb").
  virtual std::string Description() const { return {}; }

  virtual Status Pread(void* buf, uint64_t count, uint64_t offset) = 0;
  virtual Status Pwrite(const void* buf, uint64_t count, uint64_t offset, bool fua);
  virtual Status Flush();
  // Deallocate: the range may read back as anything until written (proto.md NBD_CMD_TRIM).
  virtual Status Trim(uint64_t count, uint64_t offset, bool fua);
  // Make the range read as zeroes. may_trim: holes are allowed (no NO_HOLE flag).
  // fast: fail with ENOTSUP rather than do it slowly (NBD_CMD_FLAG_FAST_ZERO).
  virtual Status Zero(uint64_t count, uint64_t offset, bool may_trim, bool fast, bool fua);
  // Appends extents covering at least one byte from `offset`, and at most
  // `count` bytes; consecutive extents may share flags.
  virtual Status Extents(uint64_t count, uint64_t offset, std::vector<Extent>* out);
  virtual Status Cache(uint64_t count, uint64_t offset);
};

}  // namespace cloudkeep::nbd
