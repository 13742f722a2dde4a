// ASCII character classes of RFC 7208's ABNF (ALPHA, DIGIT, and their
// union), shared by the record parser and the macro expander. ASCII by
// design: <cctype> would let the locale decide what a letter is.
#pragma once

namespace cloudkeep::mail::spf_detail {

inline bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
inline bool IsAlnum(char c) {
  return IsAlpha(c) || IsDigit(c);
}

}  // namespace cloudkeep::mail::spf_detail
