// The availability zone of this instance from the EC2 instance metadata
// service, version 2 (IMDSv2: a session token from PUT /latest/api/token,
// then GET /latest/meta-data/placement/availability-zone-id with it).
//
// The zone *id* (use1-az1) is asked for, not the name (us-east-1a): names
// are shuffled per account, ids name the same physical zone everywhere, and
// a mesh spans accounts.
//
// Like the AWS SDKs, AWS_EC2_METADATA_DISABLED=true turns the lookup off and
// AWS_EC2_METADATA_SERVICE_ENDPOINT replaces the endpoint. Without that
// variable the default endpoint is used only when the machine says it is an
// EC2 instance (DMI vendor "Amazon EC2"), so a laptop or another cloud never
// sends a packet to the link-local metadata address.
//
// Thread safety: safe to call from any thread (libcurl easy handles are per call).
#pragma once

#include <chrono>
#include <string>

#include "core/status.h"

namespace cloudkeep::latency {

struct ImdsOptions {
  std::chrono::milliseconds timeout{1000};
};

// The zone id, or a Failure saying why not (disabled, not on EC2, unreachable, HTTP error).
Result<std::string> ImdsAvailabilityZoneId(const ImdsOptions& opts = {});

}  // namespace cloudkeep::latency
