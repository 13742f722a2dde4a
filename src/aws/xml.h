// The XML of AWS responses (EC2's Query API, S3's REST API) as a small
// element tree: local names (namespace dropped), concatenated text, children.
//
// Parsing goes through libxml2 with network access and entity substitution
// off, and stops descending below a fixed depth. Takes untrusted bytes (the
// fuzz targets drive it), holds no state, safe to call from any thread.
#pragma once

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

}  // namespace cloudkeep::aws
