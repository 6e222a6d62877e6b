# Include-only compile check of the model and training code (and the libtorch-side CUDA
# integration, when it exists) against a libtorch 2.x with CUDA: Debian trixie's
# libtorch-cuda-dev 2.6 header tree, unpacked by scripts/torch2-headers.sh into
# build/torch2 (never installed). No find_package(Torch) (it would find the system's 1.13
# config) and no linking: an OBJECT library compiled with -fsyntax-only, the unpacked
# usr/include and usr/include/torch/csrc/api/include FIRST on the include path.
#
# A header missing from the unpacked tree would silently resolve to the system's 1.13
# copy in /usr/include: cmake/torch2-verify.cmake reads every depfile of the target and
# fails if a torch/ATen/c10/caffe2 header came from outside the unpacked tree.
#
# ON via -DANOMALYNCD_TORCH2_CHECK=ON (scripts/torch2-check.sh configures
# cmake/torch2-check/ alone, which is fast: no Node, no OpenCV, no libtorch 1.13).
option(ANOMALYNCD_TORCH2_CHECK "Compile-check cpp/model and cpp/train against the libtorch 2.x headers in build/torch2" OFF)

if(ANOMALYNCD_TORCH2_CHECK)
  get_filename_component(_t2_src "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
  set(ANOMALYNCD_TORCH2_ROOT "${_t2_src}/build/torch2" CACHE PATH "Where scripts/torch2-headers.sh unpacked libtorch-cuda-dev")
  set(_t2_inc "${ANOMALYNCD_TORCH2_ROOT}/usr/include")
  if(NOT EXISTS "${_t2_inc}/torch/csrc/api/include/torch/torch.h")
    message(FATAL_ERROR "ANOMALYNCD_TORCH2_CHECK: no libtorch 2.x headers in ${_t2_inc}; run scripts/torch2-headers.sh")
  endif()
  file(STRINGS "${_t2_inc}/torch/csrc/api/include/torch/version.h" _t2_ver REGEX "define TORCH_VERSION_(MAJOR|MINOR) ")
  message(STATUS "anomalyncd: torch2 check against ${_t2_ver} in ${_t2_inc}")
  file(GLOB _t2_sources CONFIGURE_DEPENDS "${_t2_src}/cpp/model/*.cc" "${_t2_src}/cpp/train/*.cc")
  # The libtorch-side CUDA integration (custom ops on CUDA tensors), when present; it
  # uses c10/cuda only (the local CUDA toolkit has no cuBLAS/cuDNN headers).
  file(GLOB _t2_cuda_sources CONFIGURE_DEPENDS "${_t2_src}/cpp/gpu/torch_*.cc")
  add_library(anomalyncd_torch2_check OBJECT ${_t2_sources} ${_t2_cuda_sources})
  set(_t2_cuda_inc "")
  foreach(_d /usr/local/cuda/include /usr/local/cuda-13.0/include)
    if(EXISTS "${_d}/cuda_runtime_api.h" AND NOT _t2_cuda_inc)
      set(_t2_cuda_inc "${_d}")
    endif()
  endforeach()
  target_include_directories(anomalyncd_torch2_check BEFORE PRIVATE
    "${_t2_inc}" "${_t2_inc}/torch/csrc/api/include" "${_t2_src}/cpp" ${_t2_cuda_inc})
  target_compile_features(anomalyncd_torch2_check PRIVATE cxx_std_17)
  # Debian's libtorch is built with the C++11 ABI; -fsyntax-only: parse and instantiate,
  # no code generation (a full -O0 compile costs about twice as much on CI's 2 cores).
  target_compile_definitions(anomalyncd_torch2_check PRIVATE _GLIBCXX_USE_CXX11_ABI=1 ANOMALYNCD_TORCH2_CHECK=1)
  target_compile_options(anomalyncd_torch2_check PRIVATE -fsyntax-only -Wno-deprecated-declarations)
  # Parse ATen/torch once for every file.
  target_precompile_headers(anomalyncd_torch2_check PRIVATE <ATen/ATen.h> <torch/nn/module.h>)
  add_custom_target(anomalyncd_torch2_verify ALL
    COMMAND ${CMAKE_COMMAND} -DDEP_DIR=${CMAKE_BINARY_DIR} -DTORCH2_INC=${_t2_inc} -DNINJA=${CMAKE_MAKE_PROGRAM}
            -P "${CMAKE_CURRENT_LIST_DIR}/torch2-verify.cmake"
    DEPENDS anomalyncd_torch2_check
    COMMENT "Checking that every torch/ATen/c10 header came from ${_t2_inc}")
endif()
