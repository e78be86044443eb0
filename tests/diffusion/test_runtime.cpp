#include <catch2/catch.hpp>

#include "dfs/diffusion/api.h"

TEST_CASE("configure_threads honours an explicit count", "[runtime]") {
  CHECK(dfs::diffusion::configure_threads(1) == 1);
  CHECK(dfs::diffusion::configure_threads(2) == 2);
  CHECK(dfs::diffusion::runtime_info().threads == 2);
}

TEST_CASE("runtime_info names a BLAS and the LibTorch version", "[runtime]") {
  const auto info = dfs::diffusion::runtime_info();
  CHECK_FALSE(info.torch_version.empty());
  CHECK_FALSE(info.blas.empty());
  CHECK_FALSE(info.version.empty());
}
