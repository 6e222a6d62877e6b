// SHA-256 (FIPS 180-4): the identity of a backbone checkpoint recorded in
// training bundles and checked when a bundle is loaded against its backbone file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace anomalyncd {

class Sha256 {
 public:
  void update(const uint8_t* p, size_t n);
  // Lowercase hex digest; finishes the hash (call once).
  std::string hex();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t buf_[64];
  size_t fill_ = 0;
  uint64_t total_ = 0;
};

// SHA-256 of a file, lowercase hex. Error(kIo) when unreadable.
std::string sha256File(const std::string& path);

}  // namespace anomalyncd
