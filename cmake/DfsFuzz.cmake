# libFuzzer targets for every parser of untrusted input (clang only; packaging/fuzz.sh builds
# and runs them). Each target compiles the parser's own sources with coverage instrumentation,
# AddressSanitizer and UndefinedBehaviorSanitizer, so that libFuzzer is guided by the code it
# tests and any memory error or UB aborts the run:
#   fuzz_safetensors   model and dataset container (.safetensors)   core/diffusion/fuzz
#   fuzz_dataset       training dataset reader (load_dataset)       core/diffusion/fuzz
#   fuzz_probe_decode  media probe + decode (FFmpeg)                core/media/fuzz
#   fuzz_metadata      export metadata: comment tag and sidecar     core/media/fuzz
#   fuzz_project       project file (.dfsproj) and settings JSON    core/project/fuzz
# Seed corpora live beside each target in fuzz/corpus/<name>/.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "DFS_BUILD_FUZZERS needs clang (e.g. -DCMAKE_CXX_COMPILER=clang++)")
endif()

set(DFS_FUZZ_INSTRUMENT -fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
set(DFS_FUZZ_LINK -fsanitize=fuzzer,address,undefined)
set(dfs_src ${PROJECT_SOURCE_DIR}/core)

# dfs_fuzz_target(NAME file.cpp SOURCES parser sources... LIBS libs... [CXX17])
function(dfs_fuzz_target name main)
  cmake_parse_arguments(ARG "CXX17" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${main} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${DFS_FUZZ_INSTRUMENT})
  target_link_options(${name} PRIVATE ${DFS_FUZZ_LINK})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS})
  if(ARG_CXX17)
    # LibTorch 1.13's headers do not compile with clang in C++20 mode (an incomplete IValue in
    # a constexpr std::vector); the parsers themselves need only C++17.
    set_target_properties(${name} PROPERTIES CXX_STANDARD 17)
  endif()
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
  list(APPEND DFS_FUZZ_TARGETS ${name})
  set(DFS_FUZZ_TARGETS ${DFS_FUZZ_TARGETS} PARENT_SCOPE)
endfunction()

set(DFS_FUZZ_TARGETS "")
set(dfs_diffusion_inc ${dfs_src}/diffusion/include)
dfs_fuzz_target(fuzz_safetensors ${dfs_src}/diffusion/fuzz/fuzz_safetensors.cpp CXX17
  SOURCES ${dfs_src}/diffusion/src/weights.cpp
  LIBS dfs_frame dfs_torch nlohmann_json::nlohmann_json)
dfs_fuzz_target(fuzz_dataset ${dfs_src}/diffusion/fuzz/fuzz_dataset.cpp CXX17
  SOURCES ${dfs_src}/diffusion/src/weights.cpp ${dfs_src}/diffusion/src/train/dataset.cpp
          ${dfs_src}/diffusion/src/train/file_metadata.cpp
  LIBS dfs_frame dfs_torch nlohmann_json::nlohmann_json)
foreach(t fuzz_safetensors fuzz_dataset)
  target_include_directories(${t} PRIVATE ${dfs_diffusion_inc})
endforeach()

if(DFS_WITH_MEDIA)
  # dfs_media itself is instrumented, so the probe/decode fuzzer is guided by dfs_media's code
  # (FFmpeg's own code is not rebuilt).
  target_compile_options(dfs_media PRIVATE ${DFS_FUZZ_INSTRUMENT})
  dfs_fuzz_target(fuzz_probe_decode ${dfs_src}/media/fuzz/fuzz_probe_decode.cpp LIBS dfs_media)
  dfs_fuzz_target(fuzz_metadata ${dfs_src}/media/fuzz/fuzz_metadata.cpp LIBS dfs_media)
  # The project reader is the Project value's sources (all but the generation_*.cpp and
  # model_lookup.cpp, which need dfs_media and the engine) plus the enum names of schedule.cpp
  # (torch-free).
  set(dfs_project_value_sources document.cpp json_io.cpp setting_names.cpp timeline.cpp
      validation.cpp)
  list(TRANSFORM dfs_project_value_sources PREPEND ${dfs_src}/project/src/)
  dfs_fuzz_target(fuzz_project ${dfs_src}/project/fuzz/fuzz_project.cpp
    SOURCES ${dfs_project_value_sources} ${dfs_src}/diffusion/src/schedule.cpp
    LIBS dfs_frame nlohmann_json::nlohmann_json)
  target_include_directories(fuzz_project PRIVATE ${dfs_src}/project/include
                             ${dfs_src}/project/src ${dfs_diffusion_inc})
endif()
add_custom_target(fuzzers DEPENDS ${DFS_FUZZ_TARGETS})
