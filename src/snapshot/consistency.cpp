#include "snapshot/consistency.h"

// Placeholder until the consistency work lands: it supports no options, so
// the CLI offers none, and every snapshot is recorded as crash-consistent.
namespace cloudkeep::snapshot {

struct ConsistencySession::State {};

ConsistencySession::ConsistencySession(ConsistencyOptions options) : options_(std::move(options)) {}
ConsistencySession::~ConsistencySession() = default;

Status ConsistencySession::Validate(const std::vector<Volume>&) const {
  if (options_.any()) return Status::Usage("consistency options are not available in this build");
  return Status::Ok();
}

Status ConsistencySession::Begin(const std::vector<Volume>&, SnapshotMetadata* metadata) {
  metadata->consistency = Consistency::kCrash;
  return Status::Ok();
}

Status ConsistencySession::End(SnapshotMetadata*) { return Status::Ok(); }

}  // namespace cloudkeep::snapshot
