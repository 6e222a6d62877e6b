// Crash-safe file replacement: the bytes go to a temp file beside the target
// ("<path>.tmp-<pid>-<n>", fsync'ed), which is then renamed over it, so readers
// see the old file or the new one, never a torn one.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace anomalyncd {

// Appends bytes to the file being written; throws Error(kIo) on failure.
using ByteSink = std::function<void(const void* data, size_t size)>;

// `emit(put)` writes the file's bytes through `put`. On any failure the temp file is
// removed and Error(kIo) naming `path` propagates (exceptions from `emit` too).
void writeFileAtomic(const std::string& path, const std::function<void(const ByteSink& put)>& emit);

}  // namespace anomalyncd
