// The decoder on oneDNN's Winograd convolutions (src/fast_decoder.h) against LibTorch's.
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs_skip.h"
#include "fast_cpu.h"
#include "fast_decoder.h"

using namespace dfs::diffusion;

namespace {

Autoencoder random_autoencoder(const std::string& preset, uint64_t seed) {
  Autoencoder ae(autoencoder_preset(preset));
  ae->reset_parameters(seed);
  // reset_parameters leaves biases at zero and residual branches small: make both count.
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed + 1);
  for (auto& item : ae->decoder->named_parameters()) {
    auto& p = item.value();
    if (p.dim() == 1) p.copy_(torch::rand(p.sizes(), gen).sub(0.5).mul(0.2));
    if (item.key().find(".b.weight") != std::string::npos) p.mul_(5.0);
  }
  ae->eval();
  return ae;
}

// The oneDNN plan's [H, W, 3] against LibTorch's decoder, relative to the largest value.
double worst_gap(Autoencoder& ae, fast::FastDecoder& decoder, int64_t h, int64_t w, uint64_t seed) {
  torch::InferenceMode guard;
  auto gen = at::detail::createCPUGenerator(seed);
  const auto z = torch::randn({1, ae->config().latent_channels, h, w}, gen);
  const auto reference = ae->decode_raw(z)[0].permute({1, 2, 0});
  const auto fast = decoder.decode_hwc(z);
  REQUIRE(fast.sizes() == reference.sizes());
  REQUIRE(fast.is_contiguous());
  return (fast - reference).abs().max().item<double>() /
         std::max(1e-12, reference.abs().max().item<double>());
}

}  // namespace

TEST_CASE("the Winograd decoder equals LibTorch's decoder up to float rounding",
          "[fast][decoder]") {
  for (const char* preset : {"ae-demo", "ae-tiny"}) {  // ae-tiny: widths not multiples of 16
    INFO(preset);
    auto ae = random_autoencoder(preset, 11);
    const auto decoder = fast::FastDecoder::create(*ae, 12, 16);
    if (!decoder) DFS_SKIP("no oneDNN Winograd plan on this build or CPU");
    INFO(decoder->describe());
    CHECK(decoder->describe().find("Winograd") != std::string::npos);

    CHECK(worst_gap(ae, *decoder, 12, 16, 1) < 1e-4);
    // Other latent sizes get their own plan on first use, odd ones included.
    CHECK(worst_gap(ae, *decoder, 5, 7, 2) < 1e-4);
    CHECK(worst_gap(ae, *decoder, 1, 1, 3) < 1e-4);
    CHECK(worst_gap(ae, *decoder, 12, 16, 4) < 1e-4);  // the first plan again, new input
    // The engine moves between 1 and all threads with the load: a plan per thread count.
    const int threads = at::get_num_threads();
    at::set_num_threads(threads == 1 ? 2 : 1);
    CHECK(worst_gap(ae, *decoder, 12, 16, 5) < 1e-4);
    at::set_num_threads(threads);
  }
}

TEST_CASE("the frame finish reads the decoder's last pixel shuffle in place: the same bytes",
          "[fast][decoder]") {
  torch::InferenceMode guard;
  for (const char* preset : {"ae-demo", "ae-tiny"}) {
    INFO(preset);
    auto ae = random_autoencoder(preset, 21);
    const auto decoder = fast::FastDecoder::create(*ae, 5, 7);  // odd: every row and column
    if (!decoder) DFS_SKIP("no oneDNN Winograd plan here");
    auto gen = at::detail::createCPUGenerator(22);
    const auto z = torch::randn({1, ae->config().latent_channels, 5, 7}, gen);
    const auto shuffled = decoder->decode_hwc(z);
    int64_t shuffle = 0;
    const auto unshuffled = decoder->decode_unshuffled(z, shuffle);
    CHECK(shuffle == 2);  // both presets end in a pixel shuffle by 2
    REQUIRE(unshuffled.sizes() == torch::IntArrayRef{shuffled.size(0) / shuffle,
                                                     shuffled.size(1) / shuffle,
                                                     3 * shuffle * shuffle});
    const int64_t h = shuffled.size(0), w = shuffled.size(1);
    // A reference near the frame in one half (detail moves), far in the other.
    auto ref_decoded = (shuffled.permute({2, 0, 1}) + 0.05 * torch::randn({3, h, w}, gen))
                           .clamp(-1, 1)
                           .contiguous();
    ref_decoded.narrow(2, w / 2, w - w / 2).uniform_(-1, 1, gen);
    const auto ref_pixels = (ref_decoded + 0.2 * torch::randn({3, h, w}, gen)).clamp(-1, 1);
    for (const bool with_reference : {false, true}) {
      INFO((with_reference ? "with" : "without") << " a reference");
      const auto rd = with_reference ? ref_decoded : torch::Tensor();
      const auto rp = with_reference ? ref_pixels : torch::Tensor();
      std::vector<std::uint8_t> want(static_cast<size_t>(h * w * 3)), got(want.size(), 0);
      fast::finish_frame(shuffled, rd, rp, 0.1, want.data());
      fast::finish_shuffled_frame(unshuffled, shuffle, rd, rp, 0.1, got.data());
      CHECK(got == want);
    }
  }
}

TEST_CASE("the Winograd decoder builds its one-thread plan (a busy machine's) with the first",
          "[fast][decoder]") {
  auto ae = random_autoencoder("ae-demo", 4);
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  const auto decoder = fast::FastDecoder::create(*ae, 6, 8);
  at::set_num_threads(threads);
  if (!decoder) DFS_SKIP("no oneDNN Winograd plan here");
  INFO(decoder->describe());
  CHECK(decoder->describe().find(", 2 plans") != std::string::npos);
  at::set_num_threads(1);
  CHECK(worst_gap(ae, *decoder, 6, 8, 6) < 1e-4);
  at::set_num_threads(threads);
  CHECK(decoder->describe().find(", 2 plans") != std::string::npos);  // none built on the way
}

TEST_CASE("the Winograd decoder decodes on another thread than the one that built it",
          "[fast][decoder]") {
  // The Studio loads a model on its GUI thread and generates on a worker thread.
  auto ae = random_autoencoder("ae-tiny", 9);
  const auto decoder = fast::FastDecoder::create(*ae, 6, 8);
  if (!decoder) DFS_SKIP("no oneDNN Winograd plan here");
  double gap = 1.0;
  std::thread worker([&] {
    at::set_num_threads(1);
    gap = worst_gap(ae, *decoder, 6, 8, 7);
  });
  worker.join();
  CHECK(gap < 1e-4);
}

TEST_CASE("the Winograd decoder refuses what it does not know, and latents of the wrong shape",
          "[fast][decoder]") {
  auto ae = random_autoencoder("ae-tiny", 3);
  if (!fast::FastDecoder::create(*ae, 4, 4)) DFS_SKIP("no oneDNN Winograd plan here");
  ae->decoder->push_back(torch::nn::Tanh());  // a layer the plan does not understand
  CHECK(fast::FastDecoder::create(*ae, 4, 4) == nullptr);

  auto plain = random_autoencoder("ae-tiny", 3);
  const auto decoder = fast::FastDecoder::create(*plain, 4, 4);
  REQUIRE(decoder);
  CHECK_THROWS(decoder->decode_hwc(torch::zeros({1, 3, 4, 4})));  // 3 channels, not 8
  CHECK_THROWS(decoder->decode_hwc(torch::zeros({2, 8, 4, 4})));  // one frame at a time
}

TEST_CASE("a latent model on the CPU decodes with the Winograd plan unless switched off",
          "[fast][decoder]") {
  auto ae = random_autoencoder("ae-demo", 1);
  if (!fast::FastDecoder::create(*ae, 4, 4)) DFS_SKIP("no oneDNN Winograd plan here");
  auto model = Model::random("latent", 2, "cpu");
  CHECK(model_impl(model).fast_decoder != nullptr);
  setenv("DFS_FAST_DECODER", "off", 1);
  auto plain = Model::random("latent", 2, "cpu");
  unsetenv("DFS_FAST_DECODER");
  CHECK(model_impl(plain).fast_decoder == nullptr);
}
