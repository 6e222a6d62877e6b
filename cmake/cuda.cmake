# CUDA kernels (issue 8): ANOMALYNCD_CUDA=AUTO|ON|OFF.
#   OFF   never looks for CUDA: cpp/gpu/gpu.cc says "no device" and throws ERR_DEVICE.
#   AUTO  builds the kernels (cpp/gpu/*.cu) when a CUDA compiler is found and compiles a
#         test kernel for every target architecture; otherwise a CPU-only build, with a message.
#   ON    the same, but a missing compiler or a failing test kernel stops the configure.
# The core addon links the CUDA runtime statically (no libcudart at load): a CUDA build
# loads and runs on a machine without a driver or GPU (deviceCount() == 0).
# The libtorch-side kernels (cpp/gpu/attention_cuda.cu: the [CLS]-row attention on CUDA
# tensors) are compiled only when the libtorch found has CUDA (Debian's 1.13 has not).
# Architectures: sm_75, 80, 86, 89, 90 (SASS) + compute_90 PTX; override with
# -DCMAKE_CUDA_ARCHITECTURES=... (CUDA 13 still supports sm_75: nvcc --list-gpu-arch).
set(ANOMALYNCD_CUDA "AUTO" CACHE STRING "Build the CUDA kernels: AUTO, ON or OFF")
set_property(CACHE ANOMALYNCD_CUDA PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${ANOMALYNCD_CUDA}" _ancd_cuda)
if(NOT _ancd_cuda MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "ANOMALYNCD_CUDA must be AUTO, ON or OFF (got '${ANOMALYNCD_CUDA}')")
endif()

target_sources(anomalyncd_core_stages PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../cpp/gpu/gpu.cc)
set(ANOMALYNCD_CUDA_KERNELS OFF)
set(_ancd_archs "75-real;80-real;86-real;89-real;90")

function(_ancd_cuda_missing what)
  if(_ancd_cuda STREQUAL "ON")
    message(FATAL_ERROR "ANOMALYNCD_CUDA=ON: ${what}")
  else()
    message(STATUS "anomalyncd: CUDA kernels off (${what}); building CPU-only")
  endif()
endfunction()

if(NOT _ancd_cuda STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    _ancd_cuda_missing("no CUDA compiler (nvcc) found: put nvcc on the PATH or set CMAKE_CUDA_COMPILER")
  else()
    # A test kernel with the atomics the union-find uses, for every architecture.
    set(_dir "${CMAKE_BINARY_DIR}/anomalyncd_cuda_probe")
    file(MAKE_DIRECTORY "${_dir}")
    file(WRITE "${_dir}/probe.cu"
      "__global__ void k(int* p) { atomicCAS(p + threadIdx.x, 0, 1); atomicAdd(p, __shfl_down_sync(0xffffffffu, 1, 1)); }\n"
      "int main() { int* p = nullptr; k<<<1, 32>>>(p); return 0; }\n")
    set(_gencode)
    if(NOT CMAKE_CUDA_ARCHITECTURES)
      foreach(a 75 80 86 89 90)
        list(APPEND _gencode "-gencode=arch=compute_${a},code=sm_${a}")
      endforeach()
      list(APPEND _gencode "-gencode=arch=compute_90,code=compute_90")
    endif()
    execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" ${_gencode} -cudart static -o probe probe.cu
      WORKING_DIRECTORY "${_dir}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
    if(NOT _rc EQUAL 0)
      _ancd_cuda_missing("${CMAKE_CUDA_COMPILER} cannot build a test kernel for sm_75..sm_90: ${_out}")
    else()
      if(NOT CMAKE_CUDA_ARCHITECTURES)
        set(CMAKE_CUDA_ARCHITECTURES "${_ancd_archs}")
      endif()
      enable_language(CUDA)
      find_package(CUDAToolkit)
      if(NOT TARGET CUDA::cudart_static)
        _ancd_cuda_missing("the CUDA toolkit's static runtime (libcudart_static.a) was not found")
      else()
        set(ANOMALYNCD_CUDA_KERNELS ON)
      endif()
    endif()
  endif()
endif()

if(ANOMALYNCD_CUDA_KERNELS)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  add_library(anomalyncd_gpu_kernels STATIC ${CMAKE_CURRENT_LIST_DIR}/../cpp/gpu/mebin_cuda.cu)
  target_include_directories(anomalyncd_gpu_kernels PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../cpp)
  set_target_properties(anomalyncd_gpu_kernels PROPERTIES
    CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}" CUDA_RUNTIME_LIBRARY Static
    POSITION_INDEPENDENT_CODE ON)
  target_compile_options(anomalyncd_gpu_kernels PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3>)
  target_link_libraries(anomalyncd_gpu_kernels PUBLIC CUDA::cudart_static)
  target_compile_definitions(anomalyncd_core_stages PRIVATE ANOMALYNCD_CUDA_KERNELS=1)
  target_link_libraries(anomalyncd_core_stages PUBLIC anomalyncd_gpu_kernels)
  message(STATUS "anomalyncd: CUDA kernels on (${CMAKE_CUDA_COMPILER_VERSION}, archs ${CMAKE_CUDA_ARCHITECTURES}), runtime linked statically")

  # libtorch-side: only with a libtorch built with CUDA
  if(ANOMALYNCD_WITH_MODEL AND TARGET anomalyncd_model_stages)
    if(TORCH_CUDA_LIBRARIES OR TARGET torch_cuda)
      target_sources(anomalyncd_model_stages PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../cpp/gpu/attention_cuda.cu)
      set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/../cpp/gpu/attention_cuda.cu
        PROPERTIES COMPILE_OPTIONS "$<$<COMPILE_LANGUAGE:CUDA>:-O3>")
      set_target_properties(anomalyncd_model_stages PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
      target_compile_definitions(anomalyncd_model_stages PUBLIC ANOMALYNCD_TORCH_CUDA=1)
      message(STATUS "anomalyncd: libtorch ${Torch_VERSION} has CUDA: CUDA attention kernel on")
    else()
      message(STATUS "anomalyncd: libtorch ${Torch_VERSION} has no CUDA: model stages stay CPU-only")
    endif()
  endif()
endif()
