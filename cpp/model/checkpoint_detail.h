// Pieces shared by the checkpoint readers (checkpoint.cc, torch_zip.cc,
// safetensors.cc); not part of the model API.
#pragma once
#include <c10/util/Exception.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "model/state_dict.h"

namespace anomalyncd::model::detail {

// Every content problem of one file, as Error(kCheckpoint) naming it.
class CheckpointError {
 public:
  explicit CheckpointError(std::string path) : path_(std::move(path)) {}
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(code::kCheckpoint, "Cannot load checkpoint '" + path_ + "': " + what);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// numel of `shape` with overflow / limit checks; false if negative or above `limit`.
bool checkedNumel(const std::vector<int64_t>& shape, int64_t limit, int64_t* out);

// Opens `path` for reading; Error(kIo) when it cannot be read.
std::ifstream openCheckpoint(const std::string& path, uint64_t* fileSize);

// Runs `body`, reporting anything but our own Error as a corrupt file.
template <typename F>
StateDict guardCorrupt(const CheckpointError& err, F&& body) {
  try {
    return body();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    err.fail(std::string("corrupt file (") + e.what_without_backtrace() + ")");
  } catch (const std::bad_alloc&) {
    err.fail("corrupt file (out of memory while reading it)");
  } catch (const std::exception& e) {
    err.fail(std::string("corrupt file (") + e.what() + ")");
  }
}

// A torch.save zip archive through the restricted unpickler (torch_zip.cc).
StateDict readTorchZip(const CheckpointError& err, const std::string& path, uint64_t fileSize);

// The safetensors file open as `f` (safetensors.cc); `metadata` (optional) receives
// the string values of `__metadata__`.
StateDict readSafetensorsStream(const CheckpointError& err, std::ifstream& f, uint64_t fileSize,
                                std::map<std::string, std::string>* metadata);

}  // namespace anomalyncd::model::detail
