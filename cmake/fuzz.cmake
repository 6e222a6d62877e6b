# libFuzzer harnesses for the native parsers (fuzz/*.cc), built with
#   cmake -S . -B build-fuzz -DANOMALYNCD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14
#   cmake --build build-fuzz --target anomalyncd_fuzzers
# (scripts/fuzz-smoke.sh, bench/fuzz.sh). Only the fuzz targets are built: each compiles
# the parser sources it exercises with -fsanitize=fuzzer,address,undefined (coverage and
# checks in our code); OpenCV, libpng and libtorch are the system's (not instrumented).
option(ANOMALYNCD_FUZZ "Build the libFuzzer harnesses (needs clang; see cmake/fuzz.cmake)" OFF)
if(NOT ANOMALYNCD_FUZZ)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "ANOMALYNCD_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++-14 (Debian: clang-14 libclang-rt-14-dev)")
endif()

set(ANOMALYNCD_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined -g -O1
    -fno-omit-frame-pointer)
add_custom_target(anomalyncd_fuzzers)

# anomalyncd_fuzzer(<name> TORCH? SOURCES <files...>): fuzz/<name>.cc plus the sources.
function(anomalyncd_fuzzer name)
  cmake_parse_arguments(F "TORCH" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} fuzz/${name}.cc ${F_SOURCES})
  target_include_directories(${name} PRIVATE cpp ${OpenCV_INCLUDE_DIRS})
  target_compile_options(${name} PRIVATE ${ANOMALYNCD_FUZZ_FLAGS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  if(F_TORCH)
    target_compile_options(${name} PRIVATE ${TORCH_CXX_FLAGS})
    target_link_libraries(${name} PRIVATE ${TORCH_LIBRARIES})
  endif()
  add_dependencies(anomalyncd_fuzzers ${name})
endfunction()

# Strict JSON (safetensors headers, bundle metadata).
anomalyncd_fuzzer(fuzz_json SOURCES cpp/common/json.cc)

# Map and image decoding as the pipeline calls it: our truncation and header-size checks,
# libpng for grey PNGs, OpenCV's imgcodecs (the dlopen-ed plugin) for everything else.
anomalyncd_fuzzer(fuzz_image SOURCES cpp/io/image_io.cc cpp/io/png_codec.cc cpp/common/limits.cc
                  LIBS opencv_core opencv_imgproc PNG::PNG ${CMAKE_DL_LIBS})
target_compile_definitions(fuzz_image PRIVATE ANOMALYNCD_CODECS_PATH="$<TARGET_FILE:anomalyncd_codecs>")
add_dependencies(fuzz_image anomalyncd_codecs)

if(ANOMALYNCD_WITH_MODEL)
  set(ANOMALYNCD_FUZZ_CHECKPOINT_SOURCES cpp/model/checkpoint.cc cpp/model/torch_zip.cc cpp/model/safetensors.cc
      cpp/common/json.cc cpp/common/limits.cc cpp/common/atomic_file.cc)
  # Checkpoints: readStateDict (torch.save zips through libtorch's PyTorchStreamReader under
  # our checks + the restricted unpickler; safetensors sniffed by content) and readSafetensors
  # (the container of training bundles, with its string metadata). One target: the libtorch
  # sources are the slow part of the build.
  anomalyncd_fuzzer(fuzz_checkpoint TORCH SOURCES ${ANOMALYNCD_FUZZ_CHECKPOINT_SOURCES})
endif()
