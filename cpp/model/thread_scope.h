// Exclusive, sized use of the process-wide compute thread pools (libtorch's
// intra-op pool and OpenBLAS's), shared by every stage that runs a network.
#pragma once
#include "common/cancel.h"

namespace anomalyncd::model {

// Exclusive use of the process's compute threads: waits (polling `cancel`) until no other
// ThreadScope is alive, then sets libtorch's intra-op thread count and OpenBLAS's (both
// process-wide settings; OpenBLAS's GEMM results depend on its thread count) to n, and
// restores both on destruction. fit() and predict() run inside one, so calls that run the
// network are queued one at a time per process and a seeded run's bits depend only on
// its own thread count. n <= 0: the counts are left as they are (still exclusive).
// While it lives, glibc's malloc keeps freed memory instead of returning it to the
// kernel after every forward (thread_scope.cc); the destructor gives it back.
class ThreadScope {
 public:
  explicit ThreadScope(int n, const CancelToken* cancel = nullptr);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int prevTorch_ = 0, prevBlas_ = 0;
  bool active_ = false;
};


}  // namespace anomalyncd::model
