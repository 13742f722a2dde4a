#include "aws/xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <memory>
#include <mutex>

namespace cloudkeep::aws {

namespace {

// AWS responses nest five or six levels; anything far deeper is not AWS.
constexpr int kMaxDepth = 32;

void Convert(xmlNode* in, XmlNode* out, int depth) {
  out->name = reinterpret_cast<const char*>(in->name);
  if (depth >= kMaxDepth) return;
  for (xmlNode* c = in->children; c; c = c->next) {
    if (c->type == XML_ELEMENT_NODE) {
      out->children.emplace_back();
      Convert(c, &out->children.back(), depth + 1);
    } else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
      out->text += reinterpret_cast<const char*>(c->content);
    }
  }
}

}  // namespace

const XmlNode* XmlNode::Child(std::string_view n) const {
  for (const auto& c : children)
    if (c.name == n) return &c;
  return nullptr;
}

std::string XmlNode::ChildText(std::string_view n) const {
  const XmlNode* c = Child(n);
  return c ? c->text : "";
}

Result<XmlNode> ParseXml(std::string_view bytes) {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
  if (bytes.size() > (1u << 30)) return Status::Failure("AWS response too large");
  // No network, no entity expansion, no DTD loading: the bytes come off the wire.
  std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc(
      xmlReadMemory(bytes.data(), static_cast<int>(bytes.size()), "aws.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS),
      xmlFreeDoc);
  if (!doc) return Status::Failure("malformed XML in the AWS response");
  xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!root) return Status::Failure("empty XML document in the AWS response");
  XmlNode out;
  Convert(root, &out, 0);
  return out;
}

}  // namespace cloudkeep::aws
