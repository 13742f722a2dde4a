// The EC2 Query API's XML responses (namespace
// http://ec2.amazonaws.com/doc/2016-11-15/) as plain values.
//
// Parsing goes through libxml2 with network access and entity substitution
// off, into a small element tree (local names, text, children) from which the
// shapes of DescribeSnapshots, DescribeVolumes, CreateSnapshot(s) and the
// error envelope are read. These functions take untrusted bytes (a fuzz
// target drives them), hold no state and are safe to call from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cloudkeep::aws {

struct XmlNode {
  std::string name;  // local name, namespace dropped
  std::string text;  // concatenated text children
  std::vector<XmlNode> children;
  const XmlNode* Child(std::string_view name) const;
  std::string ChildText(std::string_view name) const;
};

Result<XmlNode> ParseXml(std::string_view bytes);

// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
struct Ec2Error {
  std::string code;
  std::string message;
  std::string request_id;
};
std::optional<Ec2Error> ParseError(const XmlNode& root);

struct Ec2Snapshot {
  std::string id, volume_id, state, start_time, progress, description;
  uint64_t volume_size_gib = 0;
  std::map<std::string, std::string> tags;
};

struct Ec2Attachment {
  std::string instance_id, device, state;
  bool delete_on_termination = false;
};

struct Ec2Volume {
  std::string id, type, availability_zone, state;
  uint64_t size_gib = 0;
  std::vector<Ec2Attachment> attachments;
  std::map<std::string, std::string> tags;
};

struct SnapshotPage {
  std::vector<Ec2Snapshot> snapshots;
  std::string next_token;
};
struct VolumePage {
  std::vector<Ec2Volume> volumes;
  std::string next_token;
};

// Each checks the root element's name and fails with kFailure on anything else.
Result<SnapshotPage> ParseDescribeSnapshots(const XmlNode& root);
Result<VolumePage> ParseDescribeVolumes(const XmlNode& root);
Result<Ec2Snapshot> ParseCreateSnapshot(const XmlNode& root);
Result<std::vector<Ec2Snapshot>> ParseCreateSnapshots(const XmlNode& root);

}  // namespace cloudkeep::aws
