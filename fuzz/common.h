// Shared by the harnesses: the parsers under test read files, so each input is written to
// one per-process file in /dev/shm (tmpfs) and the parser is called on its path, exactly
// as the library calls it.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace anomalyncd::fuzz {

inline const std::string& inputPath(const char* ext) {
  // Removed at exit (a crashing run leaves it: /dev/shm/anomalyncd-fuzz-<pid>.*).
  struct Path {
    std::string p;
    ~Path() { unlink(p.c_str()); }
  };
  static const Path path{"/dev/shm/anomalyncd-fuzz-" + std::to_string(getpid()) + ext};
  return path.p;
}

inline const std::string& writeInput(const uint8_t* data, size_t size, const char* ext) {
  const std::string& path = inputPath(ext);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();
  if (size && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  return path;
}

}  // namespace anomalyncd::fuzz
