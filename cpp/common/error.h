// One exception type for every pure-C++ stage. The binding turns it into the
// TS-owned AnomalyNCDError with the same `code`; stages never see N-API.
#pragma once
#include <stdexcept>
#include <string>

namespace anomalyncd {

// Codes shared with ts/errors.ts (keep the two lists identical).
namespace code {
inline constexpr const char* kInvalidArgument = "ERR_INVALID_ARGUMENT";  // bad option / tensor
inline constexpr const char* kBadInput = "ERR_BAD_INPUT";                // bad file content / format
inline constexpr const char* kIo = "ERR_IO";                              // cannot read / write
inline constexpr const char* kCheckpoint = "ERR_CHECKPOINT";              // bad model file
inline constexpr const char* kAborted = "ERR_ABORTED";                    // cancelled by the caller
inline constexpr const char* kInternal = "ERR_INTERNAL";                  // a bug or libtorch failure
inline constexpr const char* kDevice = "ERR_DEVICE";                      // CUDA asked for but not available
inline constexpr const char* kOutOfMemory = "ERR_OUT_OF_MEMORY";          // device memory exhausted
inline constexpr const char* kLimit = "ERR_LIMIT";                        // over a size limit (common/limits.h)
}  // namespace code

class Error : public std::runtime_error {
 public:
  Error(std::string errorCode, const std::string& message)
      : std::runtime_error(message), code_(std::move(errorCode)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

}  // namespace anomalyncd
