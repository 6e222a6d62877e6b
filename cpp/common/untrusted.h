// Printable renderings of untrusted bytes for error messages (checkpoint and
// JSON readers quote what a hostile file contains without echoing control bytes).
#pragma once
#include <cstdio>
#include <string>

namespace anomalyncd {

// "0x1f": one byte in hex.
inline std::string hexByte(unsigned v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", v & 0xffu);
  return b;
}

// 'text' with non-printable bytes as \xNN, cut after 80 bytes.
inline std::string quoteUntrusted(const std::string& s) {
  std::string o = "'";
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) o += static_cast<char>(c);
    else o += "\\x" + hexByte(c).substr(2);
  }
  if (s.size() > 80) o += "...";
  return o + "'";
}

}  // namespace anomalyncd
