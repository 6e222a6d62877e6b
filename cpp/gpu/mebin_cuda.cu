// The CUDA launches of batched MEBin: thin __global__ wrappers around the
// per-thread bodies of mebin_kernels.h, a Backend for mebin_batch.h on one
// device and stream, and the runtime queries of cuda_backend.h. Compiled only
// with ANOMALYNCD_CUDA_KERNELS (cmake/cuda.cmake); the runtime is static.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "common/error.h"
#include "gpu/cuda_backend.h"
#include "gpu/mebin_batch.h"
#include "gpu/mebin_kernels.h"

namespace anomalyncd::gpu {
namespace {

[[noreturn]] void fail(cudaError_t e, const char* what) {
  cudaGetLastError();  // clear a sticky-free error state
  if (e == cudaErrorMemoryAllocation)
    throw Error(code::kOutOfMemory, std::string("CUDA out of memory (") + what + ")");
  throw Error(code::kDevice, std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

inline void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(e, what);
}

// The Exec of kernels::sweepBlock on the device: one block, blockDim.x threads.
struct DeviceExec {
  __device__ int threads() const { return static_cast<int>(blockDim.x); }
  template <class F>
  __device__ void phase(F&& f) {
    f(static_cast<int>(threadIdx.x));
    __syncthreads();
  }
  // A warp's sum, added once (every lane calls: the loops have uniform trip counts).
  __device__ void add(int v, int32_t* target) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0 && v != 0) atomicAdd(target, v);
  }
  // Warp-aggregated: lanes with the same key share one atomicAdd.
  __device__ int claim(int32_t* counters, int key) {
    const unsigned lane = threadIdx.x & 31;
    const unsigned peers = __match_any_sync(0xffffffffu, key);
    const int leader = __ffs(peers) - 1;
    int base = 0;
    if (key >= 0 && static_cast<int>(lane) == leader) base = atomicAdd(counters + key, __popc(peers));
    base = __shfl_sync(0xffffffffu, base, leader);
    return key < 0 ? -1 : base + __popc(peers & ((1u << lane) - 1u));
  }
};

__global__ void __launch_bounds__(kernels::kSweepThreadsLarge) sweepKernel(kernels::Batch b) {
  __shared__ kernels::SweepShared shared;
  DeviceExec exec;
  kernels::sweepBlock(b, shared, static_cast<int>(blockIdx.x), exec);
}

// Per slot, a device buffer and pinned host staging, grown on demand and kept for
// the next call on this thread (worker threads are reused), with the thread's
// stream and an event per slot. With chunks of at most kMaxChunkPixels that is
// about 0.9 GB of device and 130 MB of pinned host memory at most; a larger single
// map's buffers are freed after the call.
class Workspace {
 public:
  static constexpr size_t kKeepBytes = size_t{1} << 30;
  ~Workspace() { release(); }

  // `device` is the current device (withDevice sets it first).
  void select(int device) {
    if (device_ == device) return;
    release();
    device_ = device;
    ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    for (Slot& s : slots_) ok(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "cudaEventCreate");
  }
  cudaStream_t stream() const { return stream_; }
  cudaEvent_t done(int slot) const { return slots_[slot].done; }
  uint8_t* deviceBuffer(int slot, size_t bytes) {
    return slots_[slot].device.reserve(
        bytes, [](void** p, size_t n) { return cudaMalloc(p, n); }, cudaFree, "cudaMalloc");
  }
  uint8_t* hostBuffer(int slot, size_t bytes) {
    return slots_[slot].host.reserve(
        bytes, [](void** p, size_t n) { return cudaMallocHost(p, n); }, cudaFreeHost, "cudaMallocHost");
  }
  void trim() {
    size_t held = 0;
    for (const Slot& s : slots_) held += s.device.bytes + s.host.bytes;
    if (held > kKeepBytes) release();
  }
  void release() {
    // errors ignored: at process exit the runtime may already be gone
    for (Slot& s : slots_) {
      if (s.device.data) cudaFree(s.device.data);
      if (s.host.data) cudaFreeHost(s.host.data);
      if (s.done) cudaEventDestroy(s.done);
      s = Slot{};
    }
    if (stream_) cudaStreamDestroy(stream_);
    stream_ = nullptr;
    device_ = -1;
  }

 private:
  // Grown on demand; the contents are not kept when it grows.
  struct Buffer {
    void* data = nullptr;
    size_t bytes = 0;
    template <class Alloc, class Free>
    uint8_t* reserve(size_t n, Alloc alloc, Free free, const char* what) {
      if (n > bytes) {
        if (data) free(data);
        data = nullptr;
        bytes = 0;
        ok(alloc(&data, n), what);
        bytes = n;
      }
      return static_cast<uint8_t*>(data);
    }
  };
  struct Slot {
    Buffer device, host;
    cudaEvent_t done = nullptr;
  };
  int device_ = -1;
  cudaStream_t stream_ = nullptr;
  Slot slots_[2];
};

thread_local Workspace workspace;

class CudaBackend {
 public:
  explicit CudaBackend(Workspace& ws) : ws_(ws) {}
  struct Memory {
    uint8_t* device;
    uint8_t* host;
  };
  Memory reserve(int slot, size_t deviceBytes, size_t hostBytes) {
    return {ws_.deviceBuffer(slot, std::max<size_t>(deviceBytes, 1)),
            ws_.hostBuffer(slot, std::max<size_t>(hostBytes, 1))};
  }
  void upload(void* dst, const void* src, size_t bytes) {
    ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ws_.stream()), "upload");
  }
  void download(void* dst, const void* src, size_t bytes) {
    ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ws_.stream()), "download");
  }
  void sweep(const kernels::Batch& b) {
    sweepKernel<<<static_cast<unsigned>(b.mapCount), static_cast<unsigned>(b.threads), 0, ws_.stream()>>>(b);
    ok(cudaGetLastError(), "MEBin sweep launch");
  }
  void record(int slot) { ok(cudaEventRecord(ws_.done(slot), ws_.stream()), "cudaEventRecord"); }
  void wait(int slot) { ok(cudaEventSynchronize(ws_.done(slot)), "cudaEventSynchronize"); }
  void sync() { ok(cudaStreamSynchronize(ws_.stream()), "cudaStreamSynchronize"); }

 private:
  Workspace& ws_;
};

// Runs f(backend) on `device` with this thread's workspace; restores the
// thread's current device; a failure drops the workspace (its stream may be broken).
template <class F>
auto withDevice(int device, F f) {
  int previous = 0;
  ok(cudaGetDevice(&previous), "cudaGetDevice");
  struct Restore {
    int device;
    ~Restore() { cudaSetDevice(device); }
  } restore{previous};
  try {
    ok(cudaSetDevice(device), "cudaSetDevice");
    workspace.select(device);
    CudaBackend backend(workspace);
    auto result = f(backend);
    workspace.trim();
    return result;
  } catch (...) {
    workspace.release();
    throw;
  }
}

}  // namespace

namespace cuda {

int deviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string deviceName(int index) {
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  return prop.name;
}

std::vector<mebin::Result> binarizeBatch(const std::vector<mebin::MapView>& maps,
                                         const mebin::Range& range,
                                         const mebin::Options& options, int device) {
  return withDevice(device, [&](CudaBackend& be) {
    return binarizeBatchWith(be, maps, range, options);
  });
}

SweepTiming timeSweep(const std::vector<mebin::MapView>& maps, const mebin::Range& range,
                      const mebin::Options& options, int device, int repeats) {
  const SweepSetup setup = sweepSetup(maps, range, options);
  int64_t pixels = 0;
  for (const mebin::MapView& v : maps) pixels += static_cast<int64_t>(v.height) * v.width;
  // one launch over every map (the int32 union-find indices are map-local)
  if (maps.empty() || maps.size() > kMaxChunkMaps || pixels > (int64_t{1} << 28))
    throw Error(code::kInvalidArgument, "timeSweep: 1..65535 maps, at most 2^28 pixels");
  return withDevice(device, [&](CudaBackend& be) {
    const StagedChunk c =
        stageChunk(be, 0, maps, 0, maps.size(), range, options, setup.levelOf, setup.levels);
    be.sweep(c.batch);  // warm-up
    be.sync();
    cudaEvent_t start = nullptr, stop = nullptr;
    ok(cudaEventCreate(&start), "cudaEventCreate");
    ok(cudaEventCreate(&stop), "cudaEventCreate");
    std::vector<float> ms;
    for (int r = 0; r < repeats; ++r) {
      ok(cudaEventRecord(start, workspace.stream()), "cudaEventRecord");
      be.sweep(c.batch);
      ok(cudaEventRecord(stop, workspace.stream()), "cudaEventRecord");
      ok(cudaEventSynchronize(stop), "cudaEventSynchronize");
      float t = 0;
      ok(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
      ms.push_back(t);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return SweepTiming{ms[ms.size() / 2], ms.front()};
  });
}

}  // namespace cuda
}  // namespace anomalyncd::gpu
