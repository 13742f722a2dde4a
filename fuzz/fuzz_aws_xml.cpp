// Fuzzes the EC2 response parser: bytes from the network (or a hostile
// --endpoint-url) go through libxml2 into every response shape cloudkeep reads.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "providers/aws/aws_provider.h"
#include "providers/aws/ec2_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudkeep::aws;
  auto doc = ParseXml(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!doc.ok()) return 0;
  (void)ParseError(*doc);
  if (auto p = ParseDescribeSnapshots(*doc); p.ok())
    for (const auto& s : p->snapshots) (void)ToSnapshot(s);
  (void)ParseDescribeVolumes(*doc);
  (void)ParseCreateSnapshot(*doc);
  (void)ParseCreateSnapshots(*doc);
  // The network-interface and Elastic IP shapes (mirror address takeover, mail ptr --set).
  (void)ParseDescribeNetworkInterfaces(*doc);
  (void)ParseAssignPrivateIpAddresses(*doc);
  (void)ParseReturnTrue(*doc, "UnassignPrivateIpAddressesResponse");
  (void)ParseAssociateAddress(*doc);
  (void)ParseDescribeAddresses(*doc);
  (void)ParseAddressAttributeChange(*doc, "ModifyAddressAttributeResponse");
  (void)ParseDescribeAddressesAttribute(*doc);
  return 0;
}
