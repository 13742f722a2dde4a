// Fuzzes the S3 ListObjectsV2 and error-document parsers: the bytes come from
// the object store (or whatever answers at --endpoint-url) and decide which
// keys the snapshot store believes it holds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aws/s3.h"
#include "aws/xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudkeep::aws;
  auto doc = ParseXml(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!doc.ok()) return 0;
  if (auto page = ParseListObjectsV2(*doc); page.ok()) {
    // A truncated page always carries the token to continue from.
    if (page->truncated && page->next_token.empty()) __builtin_trap();
    for (const auto& o : page->objects)
      if (o.key.empty()) __builtin_trap();
  }
  (void)ParseS3Error(*doc);
  return 0;
}
