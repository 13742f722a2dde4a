#include "providers/aws/ec2_xml.h"

#include <fmt/format.h>

#include <charconv>

namespace cloudkeep::aws {

namespace {

uint64_t ToU64(const std::string& s) {
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::map<std::string, std::string> Tags(const XmlNode& n) {
  std::map<std::string, std::string> out;
  if (const XmlNode* set = n.Child("tagSet"))
    for (const auto& item : set->children)
      if (item.name == "item") out[item.ChildText("key")] = item.ChildText("value");
  return out;
}

Ec2Snapshot Snapshot(const XmlNode& n) {
  Ec2Snapshot s;
  s.id = n.ChildText("snapshotId");
  s.volume_id = n.ChildText("volumeId");
  // DescribeSnapshots and CreateSnapshot say <status>; CreateSnapshots says <state>.
  s.state = n.Child("status") ? n.ChildText("status") : n.ChildText("state");
  s.start_time = n.ChildText("startTime");
  s.progress = n.ChildText("progress");
  s.description = n.ChildText("description");
  s.volume_size_gib = ToU64(n.ChildText("volumeSize"));
  s.tags = Tags(n);
  return s;
}

Status ExpectRoot(const XmlNode& root, std::string_view name) {
  if (root.name != name)
    return Status::Failure(
        fmt::format("unexpected EC2 response: <{}> where <{}> was expected", root.name, name));
  return Status::Ok();
}

}  // namespace

std::optional<Ec2Error> ParseError(const XmlNode& root) {
  if (root.name != "Response" && root.name != "ErrorResponse") return std::nullopt;
  const XmlNode* errors = root.Child("Errors");
  const XmlNode* err = errors ? errors->Child("Error") : root.Child("Error");
  if (!err) return std::nullopt;
  Ec2Error e{err->ChildText("Code"), err->ChildText("Message"), root.ChildText("RequestID")};
  if (e.request_id.empty()) e.request_id = root.ChildText("RequestId");
  return e;
}

Result<SnapshotPage> ParseDescribeSnapshots(const XmlNode& root) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, "DescribeSnapshotsResponse"));
  SnapshotPage page;
  if (const XmlNode* set = root.Child("snapshotSet"))
    for (const auto& item : set->children)
      if (item.name == "item") page.snapshots.push_back(Snapshot(item));
  page.next_token = root.ChildText("nextToken");
  return page;
}

Result<VolumePage> ParseDescribeVolumes(const XmlNode& root) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, "DescribeVolumesResponse"));
  VolumePage page;
  if (const XmlNode* set = root.Child("volumeSet")) {
    for (const auto& item : set->children) {
      if (item.name != "item") continue;
      Ec2Volume v;
      v.id = item.ChildText("volumeId");
      v.type = item.ChildText("volumeType");
      v.availability_zone = item.ChildText("availabilityZone");
      v.state = item.ChildText("status");
      v.size_gib = ToU64(item.ChildText("size"));
      v.tags = Tags(item);
      if (const XmlNode* atts = item.Child("attachmentSet")) {
        for (const auto& a : atts->children) {
          if (a.name != "item") continue;
          v.attachments.push_back({a.ChildText("instanceId"), a.ChildText("device"),
                                   a.ChildText("status"),
                                   a.ChildText("deleteOnTermination") == "true"});
        }
      }
      page.volumes.push_back(std::move(v));
    }
  }
  page.next_token = root.ChildText("nextToken");
  return page;
}

Result<Ec2Snapshot> ParseCreateSnapshot(const XmlNode& root) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, "CreateSnapshotResponse"));
  Ec2Snapshot s = Snapshot(root);
  if (s.id.empty()) return Status::Failure("CreateSnapshot response without a snapshotId");
  return s;
}

Result<std::vector<Ec2Snapshot>> ParseCreateSnapshots(const XmlNode& root) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, "CreateSnapshotsResponse"));
  std::vector<Ec2Snapshot> out;
  if (const XmlNode* set = root.Child("snapshotSet"))
    for (const auto& item : set->children)
      if (item.name == "item") out.push_back(Snapshot(item));
  return out;
}

namespace {

Ec2AddressAttribute AddressAttribute(const XmlNode& n) {
  Ec2AddressAttribute a;
  a.public_ip = n.ChildText("publicIp");
  a.allocation_id = n.ChildText("allocationId");
  a.ptr_record = n.ChildText("ptrRecord");
  if (const XmlNode* u = n.Child("ptrRecordUpdate")) {
    a.update_value = u->ChildText("value");
    a.update_status = u->ChildText("status");
    a.update_reason = u->ChildText("reason");
  }
  return a;
}

}  // namespace

Result<NetworkInterfacePage> ParseDescribeNetworkInterfaces(const XmlNode& root) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, "DescribeNetworkInterfacesResponse"));
  NetworkInterfacePage page;
  if (const XmlNode* set = root.Child("networkInterfaceSet")) {
    for (const auto& item : set->children) {
      if (item.name != "item") continue;
      Ec2NetworkInterface e;
      e.id = item.ChildText("networkInterfaceId");
      e.subnet_id = item.ChildText("subnetId");
      e.vpc_id = item.ChildText("vpcId");
      e.availability_zone = item.ChildText("availabilityZone");
      e.status = item.ChildText("status");
      e.mac_address = item.ChildText("macAddress");
      e.private_ip = item.ChildText("privateIpAddress");
      if (const XmlNode* att = item.Child("attachment")) {
        e.instance_id = att->ChildText("instanceId");
        e.attachment_id = att->ChildText("attachmentId");
        const std::string idx = att->ChildText("deviceIndex");
        int v = -1;
        if (std::from_chars(idx.data(), idx.data() + idx.size(), v).ec == std::errc())
          e.device_index = v;
      }
      if (const XmlNode* ips = item.Child("privateIpAddressesSet")) {
        for (const auto& p : ips->children) {
          if (p.name != "item") continue;
          Ec2PrivateIp ip;
          ip.address = p.ChildText("privateIpAddress");
          ip.primary = p.ChildText("primary") == "true";
          if (const XmlNode* as = p.Child("association")) {
            ip.public_ip = as->ChildText("publicIp");
            ip.ip_owner_id = as->ChildText("ipOwnerId");
            ip.allocation_id = as->ChildText("allocationId");
            ip.association_id = as->ChildText("associationId");
          }
          e.private_ips.push_back(std::move(ip));
        }
      }
      page.interfaces.push_back(std::move(e));
    }
  }
  page.next_token = root.ChildText("nextToken");
  return page;
}

Result<std::vector<std::string>> ParseAssignPrivateIpAddresses(const XmlNode& root) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, "AssignPrivateIpAddressesResponse"));
  std::vector<std::string> out;
  if (const XmlNode* set = root.Child("assignedPrivateIpAddressesSet"))
    for (const auto& item : set->children)
      if (item.name == "item") out.push_back(item.ChildText("privateIpAddress"));
  return out;
}

Status ParseReturnTrue(const XmlNode& root, std::string_view root_name) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, root_name));
  if (root.ChildText("return") != "true")
    return Status::Failure(fmt::format("<{}> did not return true", root_name));
  return Status::Ok();
}

Result<std::string> ParseAssociateAddress(const XmlNode& root) {
  CK_RETURN_IF_ERROR(ParseReturnTrue(root, "AssociateAddressResponse"));
  std::string id = root.ChildText("associationId");
  if (id.empty()) return Status::Failure("AssociateAddress response without an associationId");
  return id;
}

Result<std::vector<Ec2Address>> ParseDescribeAddresses(const XmlNode& root) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, "DescribeAddressesResponse"));
  std::vector<Ec2Address> out;
  if (const XmlNode* set = root.Child("addressesSet")) {
    for (const auto& item : set->children) {
      if (item.name != "item") continue;
      out.push_back({item.ChildText("publicIp"), item.ChildText("allocationId"),
                     item.ChildText("domain"), item.ChildText("associationId"),
                     item.ChildText("instanceId"), item.ChildText("networkInterfaceId"),
                     item.ChildText("privateIpAddress")});
    }
  }
  return out;
}

Result<Ec2AddressAttribute> ParseAddressAttributeChange(const XmlNode& root,
                                                        std::string_view root_name) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, root_name));
  const XmlNode* a = root.Child("address");
  if (!a) return Status::Failure(fmt::format("<{}> without an <address>", root_name));
  return AddressAttribute(*a);
}

Result<AddressAttributePage> ParseDescribeAddressesAttribute(const XmlNode& root) {
  CK_RETURN_IF_ERROR(ExpectRoot(root, "DescribeAddressesAttributeResponse"));
  AddressAttributePage page;
  if (const XmlNode* set = root.Child("addressSet"))
    for (const auto& item : set->children)
      if (item.name == "item") page.addresses.push_back(AddressAttribute(item));
  page.next_token = root.ChildText("nextToken");
  return page;
}

}  // namespace cloudkeep::aws
