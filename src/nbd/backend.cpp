#include "nbd/backend.h"

#include <cerrno>

namespace cloudkeep::nbd {

// The defaults answer what a backend without the capability must: the
// server never calls them unless Caps() said so, but a caller outside the
// server (the mirror, tests) gets an error rather than silence.
Status Backend::Pwrite(const void*, uint64_t, uint64_t, bool) {
  return Status::FromErrno("write to a read-only export", EPERM);
}
Status Backend::Flush() {
  return Status::Ok();
}
Status Backend::Trim(uint64_t, uint64_t, bool) {
  return Status::FromErrno("trim on this export", ENOTSUP);
}
Status Backend::Zero(uint64_t, uint64_t, bool, bool, bool) {
  return Status::FromErrno("write zeroes on this export", ENOTSUP);
}
Status Backend::Extents(uint64_t count, uint64_t, std::vector<Extent>* out) {
  out->push_back(Extent{count, 0});  // allocated, contents unknown: always true
  return Status::Ok();
}
Status Backend::Cache(uint64_t, uint64_t) {
  return Status::Ok();
}

}  // namespace cloudkeep::nbd
