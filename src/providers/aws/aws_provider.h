// The AWS EBS provider: EBS snapshots of the volumes attached to an EC2
// instance, through the EC2 Query API.
//
// Capture issues CreateSnapshots (one crash-consistent point in time across
// the instance's volumes, --all-attached) or CreateSnapshot per volume;
// Finalize waits for 'completed' when asked and tags what was only known after
// the thaw. What cloudkeep records lives in tags: created-by=cloudkeep,
// cloudkeep:volume, cloudkeep:consistency, cloudkeep:freeze_us,
// cloudkeep:lock_us and one cloudkeep:<key> per database position. Deletions
// run on a bounded pool with retries (see Ec2Client).
//
// The local device of each volume is found from the NVMe serial links
// (/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…), never by position:
// NVMe enumeration order is not stable across boots.
//
// Region, credentials and the instance id are resolved lazily, on the first
// call that needs them, so that IMDS is contacted only when nothing else
// answers. Used by one thread at a time, like every Provider; it runs its
// own worker threads inside DeleteSnapshots.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "aws/credentials.h"
#include "providers/aws/ec2_client.h"
#include "snapshot/block_devices.h"
#include "snapshot/provider.h"

namespace cloudkeep::aws {

struct AwsProviderOptions {
  std::string region;        // --region
  std::string profile;       // --profile
  std::string endpoint_url;  // --endpoint-url
  int default_concurrency = 16;
  snapshot::SystemPaths paths;  // where /dev/disk/by-id and mounts are read
};

// "vol-" and 8 or 17 lower-case hex digits.
bool IsVolumeId(const std::string& id);
// A region name shaped as AWS spells them: "us-east-1", "ap-southeast-2", "us-gov-west-1".
bool IsRegionName(const std::string& region);
// Volume id -> local device path, from the by-id links of EBS NVMe devices.
std::map<std::string, std::string> MapEbsDevices(const std::string& by_id_dir);
// The Snapshot value for an EC2 snapshot, reading cloudkeep's tags back.
snapshot::Snapshot ToSnapshot(const Ec2Snapshot& s);
// The tags a new snapshot gets (before the thaw-time ones).
std::map<std::string, std::string> CreateTags(const snapshot::SnapshotMetadata& meta,
                                              const std::string& volume_id);

class AwsProvider final : public snapshot::Provider {
 public:
  explicit AwsProvider(AwsProviderOptions options);
  ~AwsProvider() override;
  std::string name() const override { return "aws"; }

  Result<std::vector<snapshot::Volume>> ListVolumes(bool include_all) override;
  Result<snapshot::Volume> ResolveVolume(const std::string& spec) override;
  std::string CanonicalVolumeId(const std::string& spec) override;
  Status Prepare(const snapshot::CreateRequest& request) override;
  Result<std::unique_ptr<snapshot::CaptureHandle>> Capture(
      const snapshot::CreateRequest& request) override;
  Result<std::vector<snapshot::Snapshot>> Finalize(
      std::unique_ptr<snapshot::CaptureHandle> capture,
      const snapshot::SnapshotMetadata& metadata) override;
  void Abandon(std::unique_ptr<snapshot::CaptureHandle> capture) override;
  Result<std::vector<snapshot::Snapshot>> ListSnapshots(
      const snapshot::SnapshotFilter& filter) override;
  Result<snapshot::Snapshot> GetSnapshot(const std::string& id) override;
  Result<std::vector<snapshot::DeleteOutcome>> DeleteSnapshots(
      const std::vector<std::string>& ids, const snapshot::DeleteOptions& options) override;

  // The EC2 client (region, credentials and endpoint resolved on first use)
  // and the instance metadata service, for the commands that call EC2
  // directly (`mail ptr --set`).
  Result<Ec2Client*> Client();
  Imds& imds() { return imds_; }

 private:
  Result<std::string> InstanceId();
  Result<std::vector<Ec2Volume>> DescribeVolumes(const Params& params);
  snapshot::Volume ToVolume(const Ec2Volume& v, const std::map<std::string, std::string>& devices);

  AwsProviderOptions options_;
  Imds imds_;
  CredentialChain credentials_;
  std::unique_ptr<Ec2Client> client_;
  std::string instance_id_;
};

}  // namespace cloudkeep::aws
