#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace anomalyncd {

namespace {

void writeAll(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error(code::kIo, "Cannot write '" + path + "': " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

void writeFileAtomic(const std::string& path, const std::function<void(const ByteSink& put)>& emit) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(code::kIo, "Cannot write '" + path + "': " + std::strerror(errno));
  try {
    emit([&](const void* p, size_t n) { writeAll(fd, p, n, path); });
    if (::fsync(fd) != 0) throw Error(code::kIo, "Cannot write '" + path + "': fsync: " + std::strerror(errno));
    if (::close(fd) != 0) {
      const int err = errno;
      std::remove(tmp.c_str());
      throw Error(code::kIo, "Cannot write '" + path + "': " + std::strerror(err));
    }
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(code::kIo, "Cannot write '" + path + "': rename: " + std::strerror(err));
  }
  // Make the rename durable too (best effort).
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace anomalyncd
