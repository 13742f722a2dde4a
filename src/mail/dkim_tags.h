// DKIM tag-lists (RFC 6376 §3.2) and the base64 they carry.
//
// Both the DKIM-Signature header field (§3.5) and the key record published
// in DNS (§3.6.1) are tag-lists: "name=value" pairs separated by ";", with
// folding white space allowed around names, "=" and values. Values keep
// their interior white space; base64 values (b=, bh=, p=) ignore it when
// decoded (§3.5 "b=": "Whitespace is ignored in this value").
//
// Thread safety: pure functions on values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace cloudkeep::mail {

struct DkimTag {
  std::string name;
  std::string value;  // leading and trailing FWS removed, interior kept
};
using DkimTagList = std::vector<DkimTag>;

// Parses a tag-list; kFailure naming the offending tag on a syntax error or a
// duplicate tag name (§3.2: a duplicate makes "the entire tag-list invalid").
Result<DkimTagList> ParseDkimTagList(std::string_view text);

// The tag's value, or nullptr when absent. Tag names are case-sensitive (§3.2).
const std::string* FindDkimTag(const DkimTagList& tags, std::string_view name);

// Base64 with any white space (FWS) ignored; kFailure on other bad input.
Result<std::string> DecodeDkimBase64(std::string_view text);
std::string EncodeBase64(std::string_view bytes);

// Splits "a:b : c" on ':' and trims white space around each element.
std::vector<std::string> SplitDkimList(std::string_view value);

// True for SP, HTAB, CR and LF: the characters FWS is made of.
inline bool IsDkimFws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

}  // namespace cloudkeep::mail
