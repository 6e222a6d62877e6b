// The CUDA launches of batched MEBin: thin __global__ wrappers around the
// per-thread bodies of mebin_kernels.h, a Backend for mebin_batch.h on one
// device and stream, and the runtime queries of cuda_backend.h. Compiled only
// with ANOMALYNCD_CUDA_KERNELS (cmake/cuda.cmake); the runtime is static.
#include <cuda_runtime.h>

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

// A warp's sum, added once (all 32 lanes of the warp take part: no early exits).
__device__ __forceinline__ void warpAdd(int v, int* target) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0 && v != 0) atomicAdd(target, v);
}

__global__ void columnMinKernel(kernels::Batch b) {
  kernels::forPixel(b, blockIdx.x, blockIdx.y, threadIdx.x,
                    [&](int m, int64_t p) { return kernels::columnMinBody(b, m, p), 0; });
}
__global__ void rowMinKernel(kernels::Batch b) {
  kernels::forPixel(b, blockIdx.x, blockIdx.y, threadIdx.x,
                    [&](int m, int64_t p) { return kernels::rowMinBody(b, m, p), 0; });
}
__global__ void initParentKernel(kernels::Batch b) {
  kernels::forPixel(b, blockIdx.x, blockIdx.y, threadIdx.x,
                    [&](int m, int64_t p) { return kernels::initParentBody(b, m, p), 0; });
}
__global__ void levelKernel(kernels::Batch b, int level) {
  const int v = kernels::forPixel(b, blockIdx.x, blockIdx.y, threadIdx.x, [&](int m, int64_t p) {
    return kernels::levelBody(b, m, p, level);
  });
  warpAdd(v, b.delta + static_cast<int64_t>(blockIdx.y) * b.levels + level);
}
__global__ void binaryKernel(kernels::Batch b) {
  int v = kernels::forPixel(b, blockIdx.x, blockIdx.y, threadIdx.x,
                            [&](int m, int64_t p) { return kernels::binaryBody(b, m, p); });
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0 && v != 0)
    atomicAdd(b.foreground + blockIdx.y, static_cast<unsigned long long>(v));
}

class CudaBackend {
 public:
  explicit CudaBackend(cudaStream_t stream) : stream_(stream) {}
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend(CudaBackend&& o) noexcept : stream_(o.stream_), buffers_(std::move(o.buffers_)) {
    o.buffers_.clear();
  }
  ~CudaBackend() {
    for (void* p : buffers_) cudaFree(p);
  }

  template <class T>
  T* alloc(size_t n) {
    void* p = nullptr;
    ok(cudaMalloc(&p, std::max<size_t>(n * sizeof(T), 1)), "cudaMalloc");
    buffers_.push_back(p);
    return static_cast<T*>(p);
  }
  void upload(void* dst, const void* src, size_t bytes) {
    ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "upload");
  }
  void download(void* dst, const void* src, size_t bytes) {
    ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download");
    sync();
  }
  void zero(void* p, size_t bytes) { ok(cudaMemsetAsync(p, 0, bytes, stream_), "memset"); }
  void columnMin(const kernels::Batch& b, kernels::Geometry g) {
    columnMinKernel<<<grid(g), kernels::kBlock, 0, stream_>>>(b);
    check("columnMin");
  }
  void rowMin(const kernels::Batch& b, kernels::Geometry g) {
    rowMinKernel<<<grid(g), kernels::kBlock, 0, stream_>>>(b);
    check("rowMin");
  }
  void initParent(const kernels::Batch& b, kernels::Geometry g) {
    initParentKernel<<<grid(g), kernels::kBlock, 0, stream_>>>(b);
    check("initParent");
  }
  void level(const kernels::Batch& b, kernels::Geometry g, int level) {
    levelKernel<<<grid(g), kernels::kBlock, 0, stream_>>>(b, level);
    check("level");
  }
  void binary(const kernels::Batch& b, kernels::Geometry g) {
    binaryKernel<<<grid(g), kernels::kBlock, 0, stream_>>>(b);
    check("binary");
  }
  void sync() { ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

 private:
  static dim3 grid(kernels::Geometry g) { return dim3(g.blocksX, g.mapCount, 1); }
  static void check(const char* what) { ok(cudaGetLastError(), what); }
  cudaStream_t stream_;
  std::vector<void*> buffers_;
};

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
  int previous = 0;
  ok(cudaGetDevice(&previous), "cudaGetDevice");
  ok(cudaSetDevice(device), "cudaSetDevice");
  cudaStream_t stream = nullptr;
  ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  struct Restore {
    int device;
    cudaStream_t stream;
    ~Restore() {
      cudaStreamDestroy(stream);
      cudaSetDevice(device);
    }
  } restore{previous, stream};
  return binarizeBatchWith([&] { return CudaBackend(stream); }, maps, range, options);
}

}  // namespace cuda
}  // namespace anomalyncd::gpu
