# Finds every third-party dependency once. Torch's headers are marked SYSTEM so that their
# warnings never fail our -Werror build.

find_package(Torch REQUIRED)
find_package(nlohmann_json 3.9 QUIET)
if(NOT TARGET nlohmann_json::nlohmann_json)
  # GPU machines with only a pip LibTorch: use the vendored copy (third_party/README.md).
  message(STATUS "nlohmann_json: using third_party fallback")
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  target_include_directories(nlohmann_json::nlohmann_json INTERFACE
                             ${PROJECT_SOURCE_DIR}/third_party/nlohmann_json/include)
endif()
find_package(Threads REQUIRED)

add_library(dfs_torch INTERFACE)
target_link_libraries(dfs_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(dfs_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_compile_options(dfs_torch INTERFACE ${TORCH_CXX_FLAGS})
if(Torch_VERSION)
  target_compile_definitions(dfs_torch INTERFACE DFS_TORCH_VERSION_STRING="${Torch_VERSION}")
endif()

# One precompiled-header carrier that every torch-using target reuses.
if(DFS_USE_PCH)
  file(WRITE ${CMAKE_BINARY_DIR}/dfs_torch_pch.cpp "// carrier of the shared torch PCH\n")
  add_library(dfs_torch_pch OBJECT ${CMAKE_BINARY_DIR}/dfs_torch_pch.cpp)
  target_link_libraries(dfs_torch_pch PUBLIC dfs_torch nlohmann_json::nlohmann_json)
  target_precompile_headers(dfs_torch_pch PRIVATE <torch/torch.h> <nlohmann/json.hpp>
                            <vector> <string> <memory> <functional> <optional>)
endif()

find_package(CLI11 QUIET CONFIG)
if(NOT TARGET CLI11::CLI11)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp)
  if(NOT CLI11_INCLUDE_DIR)
    message(STATUS "CLI11: using third_party fallback")
    set(CLI11_INCLUDE_DIR ${PROJECT_SOURCE_DIR}/third_party/cli11/include)
  endif()
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
endif()

if(DFS_WITH_MEDIA)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libavutil libswscale)
  # Debian's libopencv-{core,imgproc}-dev ship no CMake config; find the two modules directly.
  find_path(OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
  find_library(OPENCV_CORE_LIB opencv_core REQUIRED)
  find_library(OPENCV_IMGPROC_LIB opencv_imgproc REQUIRED)
  add_library(dfs_opencv INTERFACE)
  target_include_directories(dfs_opencv SYSTEM INTERFACE ${OPENCV_INCLUDE_DIR})
  target_link_libraries(dfs_opencv INTERFACE ${OPENCV_IMGPROC_LIB} ${OPENCV_CORE_LIB})
endif()

if(DFS_BUILD_UI)
  find_package(Qt6 REQUIRED COMPONENTS Core Gui Widgets OpenGL OpenGLWidgets Test Concurrent)
  find_package(OpenGL REQUIRED)
  find_path(IMGUI_INCLUDE_DIR imgui.h PATH_SUFFIXES imgui REQUIRED)
  find_library(IMGUI_LIB imgui REQUIRED)
  add_library(dfs_imgui INTERFACE)
  target_include_directories(dfs_imgui SYSTEM INTERFACE ${IMGUI_INCLUDE_DIR})
  target_link_libraries(dfs_imgui INTERFACE ${IMGUI_LIB} OpenGL::GL ${CMAKE_DL_LIBS})
endif()

if(DFS_BUILD_TESTS)
  # Debian 12 ships Catch2 2.13; tests/catch_main.cpp provides main().
  find_package(Catch2 2 REQUIRED CONFIG)
  include(Catch)
endif()
