// Latent models: the autoencoder (shapes, normalisation, preview fit, files), EDM
// preconditioning, rollouts through latents (pins bit-identical), and the old pixel format.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs/diffusion/noise.h"
#include "dfs/diffusion/weights.h"
#include "diffusion/diffusion_test_util.h"

using namespace dfs::diffusion;
using dfs_test::refusal_of;

namespace {

std::string temp_path(const std::string& name) {
  return dfs_test::pid_temp_path("dfs_latent", name);
}

// Smooth, varied pictures in [-1, 1]: sums of low-frequency waves (the preview can fit them).
torch::Tensor smooth_frames(int n, int h, int w, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  const auto y = torch::linspace(0, 1, h).view({1, 1, h, 1});
  const auto x = torch::linspace(0, 1, w).view({1, 1, 1, w});
  auto out = torch::zeros({n, 3, h, w});
  for (int k = 0; k < 4; ++k) {
    const auto a = torch::rand({n, 3, 1, 1}, g) * 0.4;
    const auto fx = torch::rand({n, 3, 1, 1}, g) * 6;
    const auto fy = torch::rand({n, 3, 1, 1}, g) * 6;
    const auto ph = torch::rand({n, 3, 1, 1}, g) * 6.28;
    out = out + a * torch::sin(fx * x * 6.28 + fy * y * 6.28 + ph);
  }
  return out.clamp(-1, 1);
}

dfs::Frame patterned_frame(int w, int h, int seed) {
  dfs::Frame f(w, h);
  for (int yy = 0; yy < h; ++yy)
    for (int xx = 0; xx < w; ++xx)
      for (int c = 0; c < 3; ++c)
        f.row(yy)[3 * xx + c] =
            static_cast<std::uint8_t>((xx * 5 + yy * 3 + seed * 13 + c * 70) & 255);
  return f;
}

// A timeline of `length` frames with patterned content pinned at `pins`.
std::vector<TimelineFrame> pinned_timeline(int length, const std::vector<int>& pins, int w, int h) {
  std::vector<TimelineFrame> timeline(static_cast<size_t>(length));
  for (int i : pins) {
    timeline[static_cast<size_t>(i)].content = patterned_frame(w, h, i);
    timeline[static_cast<size_t>(i)].pinned = true;
  }
  return timeline;
}

}  // namespace

TEST_CASE("autoencoder: 8x down and back up, bounded latents, normalisation round-trips",
          "[latent]") {
  torch::InferenceMode guard;
  Autoencoder ae(autoencoder_preset("ae-tiny"));
  ae->reset_parameters(3);
  const auto x = smooth_frames(2, 48, 64, 1);
  const auto z = ae->encode_raw(x);
  CHECK(z.sizes() == torch::IntArrayRef({2, 8, 6, 8}));
  CHECK(z.abs().max().item<double>() < 3.0);  // the soft bound
  CHECK(ae->decode_raw(z).sizes() == x.sizes());
  CHECK(ae->preview(z).sizes() == x.sizes());
  ae->set_statistics(std::vector<double>(8, 0.5), std::vector<double>(8, 2.0), 6.0);
  const auto n = ae->encode(x);
  CHECK(torch::allclose(n, (z - 0.5) / 2.0, 1e-5, 1e-6));
  CHECK(torch::allclose(ae->denormalise(n), z, 1e-5, 1e-6));
  CHECK_THROWS_AS(ae->encode_raw(torch::zeros({1, 3, 50, 64})), Error);  // not a multiple of 8
}

TEST_CASE("autoencoder files round-trip and damaged ones are refused with a reason", "[latent]") {
  Autoencoder ae(autoencoder_preset("ae-tiny"));
  ae->reset_parameters(7);
  ae->set_statistics(std::vector<double>(8, 0.1), std::vector<double>(8, 0.9), 4.5);
  const auto path = temp_path("ae.safetensors");
  save_autoencoder(path, ae);
  auto back = load_autoencoder(path);
  CHECK(back->config().to_json() == ae->config().to_json());
  torch::NoGradGuard guard;
  const auto x = smooth_frames(1, 48, 64, 4);
  CHECK(torch::equal(back->decode(back->encode(x)), ae->decode(ae->encode(x))));

  auto file = load_safetensors(path);
  file.tensors.erase("ae.decoder.0.weight");
  save_safetensors(path, file);
  CHECK(refusal_of([&] { load_autoencoder(path); }, "a missing tensor was accepted")
            .find("ae.decoder.0.weight") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("EDM objective: x0 from the network output and the training target invert each other",
          "[latent][noise]") {
  for (double sd : {0.5, 1.0}) {
    const NoiseSchedule s(NoiseScheduleKind::Cosine, sd);
    auto g = at::detail::createCPUGenerator(9);
    const auto x0 = torch::randn({2, 3, 4, 5, 5}, g) * sd;
    const auto eps = torch::randn({2, 3, 4, 5, 5}, g);
    const auto levels = torch::tensor({{0.05, 0.5, 1.0}, {0.2, 0.8, 0.95}});
    const auto xn = s.add_noise(x0, eps, levels);
    const auto f = s.target(Objective::Edm, x0, eps, levels);
    CHECK(torch::allclose(s.to_x0(Objective::Edm, f, xn, levels), x0, 1e-3, 1e-4));
    CHECK(torch::allclose(s.to_eps(Objective::Edm, f, xn, levels), eps, 1e-2, 1e-3));
  }
  // sigma_data = 1: the same as v-prediction with F = -v.
  const NoiseSchedule s(NoiseScheduleKind::Cosine, 1.0);
  const auto x0 = torch::randn({1, 2, 3, 4, 4});
  const auto eps = torch::randn({1, 2, 3, 4, 4});
  const auto levels = torch::tensor({{0.3, 0.7}});
  CHECK(torch::allclose(s.target(Objective::Edm, x0, eps, levels),
                        -s.target(Objective::V, x0, eps, levels), 1e-4, 1e-5));
}

TEST_CASE("a latent model's rollout keeps pinned frames bit-identical and makes model-size frames",
          "[latent][rollout]") {
  Model model = Model::random("latent-tiny", 1);
  const auto& info = model.info();
  REQUIRE(info.latent_channels == 8);
  REQUIRE(info.width == 64);
  REQUIRE(info.height == 48);
  const auto timeline = pinned_timeline(12, {0, 1, 2, 7}, 64, 48);
  RolloutSettings settings;
  settings.context = 3;
  settings.horizon = 4;
  settings.sampler.schedule.steps = 4;
  std::vector<int> order;
  std::vector<dfs::Frame> out(timeline.size());
  int previews = 0;
  RolloutCallbacks cb;
  cb.on_frame = [&](int index, const dfs::Frame& f) {
    order.push_back(index);
    out[static_cast<size_t>(index)] = f;
  };
  cb.on_progress = [&](const RolloutProgress& p) {
    for (const auto& [index, frame] : p.preview) {
      CHECK(frame.width == 64);
      CHECK(frame.height == 48);
      ++previews;
    }
  };
  run_rollout(model, timeline, settings, cb);
  REQUIRE(order.size() == timeline.size());
  for (size_t i = 0; i < order.size(); ++i) CHECK(order[i] == static_cast<int>(i));
  for (int i : {0, 1, 2, 7})
    CHECK(out[static_cast<size_t>(i)] == timeline[static_cast<size_t>(i)].content);
  for (int i : {3, 4, 5, 6, 8, 9, 10, 11}) {
    CHECK(out[static_cast<size_t>(i)].width == 64);
    CHECK(out[static_cast<size_t>(i)].height == 48);
  }
  CHECK(previews > 0);
  // Same seed, same frames.
  std::vector<dfs::Frame> again(timeline.size());
  cb.on_frame = [&](int index, const dfs::Frame& f) { again[static_cast<size_t>(index)] = f; };
  cb.on_progress = nullptr;
  run_rollout(model, timeline, settings, cb);
  for (size_t i = 0; i < out.size(); ++i) CHECK(again[i] == out[i]);
}

TEST_CASE(
    "detail transfer gives the reference's pixels where the scene is static and the plain "
    "decoding where it moved",
    "[latent]") {
  torch::manual_seed(3);
  const auto ref_pixels = torch::rand({3, 48, 64}) * 2 - 1;
  const auto ref_decoded = (ref_pixels * 0.7).clamp(-1, 1);  // a blurrier, duller stand-in
  // Static: the generated frame decodes exactly like the reference.
  const auto same = transfer_detail(ref_decoded, ref_decoded, ref_pixels, kDetailTolerance);
  CHECK(same.sub(ref_pixels).abs().max().item<float>() < 1e-6f);
  // Moved everywhere by 1.0 (far beyond the tolerance): the plain decoding is kept.
  const auto moved_dec = torch::where(ref_decoded > 0, ref_decoded - 1, ref_decoded + 1);
  const auto moved = transfer_detail(moved_dec, ref_decoded, ref_pixels, kDetailTolerance);
  CHECK((moved - moved_dec).abs().max().item<float>() < 1e-6f);
  // Left half static, right half moved: detail only on the left (the 9x9 gate blurs the seam).
  auto half = ref_decoded.clone();
  half.narrow(2, 32, 32).add_(0.8);
  const auto mixed = transfer_detail(half, ref_decoded, ref_pixels, kDetailTolerance);
  CHECK(mixed.narrow(2, 0, 24).sub(ref_pixels.narrow(2, 0, 24)).abs().max().item<float>() < 1e-6f);
  CHECK(mixed.narrow(2, 40, 24).sub(half.narrow(2, 40, 24).clamp(-1, 1)).abs().max().item<float>() <
        1e-3f);
  // Batched input gives the same as one at a time, and the result stays in [-1, 1].
  const auto batch =
      transfer_detail(torch::stack({ref_decoded, half}), ref_decoded, ref_pixels, kDetailTolerance);
  CHECK(torch::equal(batch[1], mixed));
  CHECK(batch.abs().max().item<float>() <= 1.0f);
}

TEST_CASE("a latent model file holds transformer and autoencoder, loading checks both",
          "[latent][weights]") {
  Model model = Model::random("latent-tiny", 2);
  auto& impl = model_impl(model);
  const auto path = temp_path("latent.safetensors");
  save_model(path, impl.net, impl.config, {{"note", "test"}}, &impl.ae);
  Model back = Model::load(path, "cpu");
  CHECK(back.info().latent_channels == 8);
  CHECK(back.info().width == 64);
  CHECK(model_impl(back).x0_clamp == impl.x0_clamp);
  // The same frames from the same seed.
  const auto timeline = pinned_timeline(6, {0, 1}, 64, 48);
  RolloutSettings settings;
  settings.context = 2;
  settings.horizon = 4;
  settings.sampler.schedule.steps = 3;
  auto frames_of = [&](Model& m) {
    std::vector<dfs::Frame> out;
    RolloutCallbacks cb;
    cb.want_preview = false;
    cb.on_frame = [&](int, const dfs::Frame& f) { out.push_back(f); };
    run_rollout(m, timeline, settings, cb);
    return out;
  };
  const bool same = frames_of(model) == frames_of(back);
  CHECK(same);
  // A latent model file without its autoencoder tensors is refused, naming them.
  auto file = load_safetensors(path);
  for (auto it = file.tensors.begin(); it != file.tensors.end();)
    it = it->first.rfind("ae.encoder.", 0) == 0 ? file.tensors.erase(it) : std::next(it);
  save_safetensors(path, file);
  CHECK(refusal_of([&] { Model::load(path, "cpu"); }, "a latent model without its encoder loaded")
            .find("ae.encoder") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("a model that outputs NaN stops the rollout with a message and emits no garbage frame",
          "[rollout]") {
  for (const char* preset : {"tiny", "latent-tiny"}) {
    Model model = Model::random(preset, 3);
    {
      torch::NoGradGuard guard;
      model_impl(model).net->final_modulation->bias.fill_(std::numeric_limits<float>::quiet_NaN());
    }
    const auto& info = model.info();
    const auto timeline = pinned_timeline(8, {0, 1}, info.width, info.height);
    RolloutSettings settings;
    settings.context = 2;
    settings.horizon = 3;
    settings.sampler.schedule.steps = 3;
    std::vector<int> emitted;
    RolloutCallbacks cb;
    cb.on_frame = [&](int index, const dfs::Frame&) { emitted.push_back(index); };
    const std::string what = refusal_of([&] { run_rollout(model, timeline, settings, cb); },
                                        "a NaN model finished a rollout");
    CHECK(what.find("invalid values") != std::string::npos);
    CHECK(what.find("step 1") != std::string::npos);
    CHECK(what.find("window 1") != std::string::npos);
    CHECK(emitted == std::vector<int>{0, 1});  // the pinned frames before the failure only
  }
}
