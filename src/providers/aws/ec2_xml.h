// The EC2 Query API's XML responses (namespace
// http://ec2.amazonaws.com/doc/2016-11-15/) as plain values.
//
// Parsed by aws/xml.h (libxml2, no network, no entities) into the element
// tree from which the shapes of DescribeSnapshots, DescribeVolumes,
// CreateSnapshot(s) and the error envelope are read, and those of the
// network-interface and Elastic IP calls (DescribeNetworkInterfaces,
// Assign/UnassignPrivateIpAddresses, AssociateAddress, DescribeAddresses, the address-attribute
// calls that set reverse DNS). These functions take untrusted bytes (a fuzz target drives them),
// hold no state and are safe to call from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aws/xml.h"
#include "core/status.h"

namespace cloudkeep::aws {

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

// One private IPv4 address of a network interface, with the Elastic IP
// associated with it, if any.
struct Ec2PrivateIp {
  std::string address;
  bool primary = false;
  std::string public_ip;      // empty: no public address on this private one
  std::string ip_owner_id;    // "amazon" for an auto-assigned public address
  std::string allocation_id;  // set only for an Elastic IP
  std::string association_id;
};

struct Ec2NetworkInterface {
  std::string id, subnet_id, vpc_id, availability_zone, status, mac_address;
  std::string private_ip;  // the primary private address
  // From <attachment>; empty instance_id: not attached.
  std::string instance_id, attachment_id;
  int device_index = -1;
  std::vector<Ec2PrivateIp> private_ips;  // primary first, as EC2 lists them
};

struct NetworkInterfacePage {
  std::vector<Ec2NetworkInterface> interfaces;
  std::string next_token;
};

struct Ec2Address {
  std::string public_ip, allocation_id, domain;
  // Where it is associated; all empty when it is not.
  std::string association_id, instance_id, network_interface_id, private_ip;
};

// The domain-name attribute of an Elastic IP (its reverse DNS).
struct Ec2AddressAttribute {
  std::string public_ip, allocation_id;
  std::string ptr_record;  // what reverse DNS says now ("mail.example.com.")
  // A requested change, from <ptrRecordUpdate>; empty status: none pending.
  std::string update_value, update_status, update_reason;
};

struct AddressAttributePage {
  std::vector<Ec2AddressAttribute> addresses;
  std::string next_token;
};

// Each checks the root element's name and fails with kFailure on anything else.
Result<NetworkInterfacePage> ParseDescribeNetworkInterfaces(const XmlNode& root);
// The addresses EC2 says it assigned (the ones asked for, or those it chose).
Result<std::vector<std::string>> ParseAssignPrivateIpAddresses(const XmlNode& root);
// <ROOT><return>true</return></ROOT>: kFailure unless it says true.
Status ParseReturnTrue(const XmlNode& root, std::string_view root_name);
// The new association id.
Result<std::string> ParseAssociateAddress(const XmlNode& root);
Result<std::vector<Ec2Address>> ParseDescribeAddresses(const XmlNode& root);
// ModifyAddressAttribute and ResetAddressAttribute answer one <address>.
Result<Ec2AddressAttribute> ParseAddressAttributeChange(const XmlNode& root,
                                                        std::string_view root_name);
Result<AddressAttributePage> ParseDescribeAddressesAttribute(const XmlNode& root);
Result<SnapshotPage> ParseDescribeSnapshots(const XmlNode& root);
Result<VolumePage> ParseDescribeVolumes(const XmlNode& root);
Result<Ec2Snapshot> ParseCreateSnapshot(const XmlNode& root);
Result<std::vector<Ec2Snapshot>> ParseCreateSnapshots(const XmlNode& root);

}  // namespace cloudkeep::aws
