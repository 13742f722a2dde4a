// Small string helpers that every module needs and that were written again in
// each: ASCII lower-casing, trimming, splitting on one character, joining.
//
// They are ASCII by design: they serve protocol tokens (header names, DNS
// names, tags, config keys) where a locale must not change the answer, so
// they never call the locale-dependent <cctype> with a non-ASCII byte.
// Prefix and suffix tests are std::string_view's own starts_with/ends_with.
//
// Pure functions; safe to call from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cloudkeep {

// The characters Trim removes: space, tab, CR, LF.
inline constexpr std::string_view kAsciiSpace = " \t\r\n";

// 'A'-'Z' to 'a'-'z'; every other byte, UTF-8 included, as it is.
std::string AsciiLower(std::string_view s);
// True when `a` and `b` are equal ignoring ASCII case.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Without leading and trailing `chars`.
std::string_view TrimView(std::string_view s, std::string_view chars = kAsciiSpace);
std::string Trim(std::string_view s, std::string_view chars = kAsciiSpace);

// Every field between `sep`s, empty ones included: "a,,b" -> {"a", "", "b"},
// "" -> {""}. Callers that want no empty fields drop them.
std::vector<std::string> Split(std::string_view s, char sep);

// "a, b, c" for Join({"a", "b", "c"}, ", "); "" for none.
std::string Join(const std::vector<std::string>& items, std::string_view sep);

}  // namespace cloudkeep
