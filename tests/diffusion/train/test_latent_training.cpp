// Synthetic camera motion over stills (deterministic, in bounds), the autoencoder trainer (it
// learns, resumes bit-for-bit), dataset encoding, and a tiny latent model that learns a pan.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/train/ae_trainer.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/eval.h"
#include "dfs/diffusion/train/trainer.h"
#include "dfs/diffusion/weights.h"
#include "diffusion/diffusion_test_util.h"

using namespace dfs::diffusion;
using namespace dfs::diffusion::train;

namespace {

std::filesystem::path temp_path(const std::string& name) {
  return dfs_test::temp_path_in("dfs_latent_train_" + std::to_string(::getpid()), name);
}

// A "photograph" a tiny autoencoder can hold: soft colour blobs (Gaussians, 6-20 px) over a
// smooth gradient, uint8 [H, W, 3].
torch::Tensor still(int h, int w, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  const auto y = torch::arange(h, torch::kFloat32).view({h, 1, 1});
  const auto x = torch::arange(w, torch::kFloat32).view({1, w, 1});
  auto img =
      0.3 + 0.4 * torch::rand({1, 1, 3}, g) * (x / w) + 0.2 * torch::rand({1, 1, 3}, g) * (y / h);
  for (int k = 0; k < 40; ++k) {
    const double cy = torch::rand({1}, g).item<double>() * h,
                 cx = torch::rand({1}, g).item<double>() * w;
    const double r = 6 + 14 * torch::rand({1}, g).item<double>();
    const auto colour = torch::rand({1, 1, 3}, g) - 0.5;
    img = img + colour * torch::exp(-((x - cx).pow(2) + (y - cy).pow(2)) / (2 * r * r));
  }
  return (img.clamp(0, 1) * 255).round().to(torch::kUInt8);
}

std::vector<torch::Tensor> stills(int n, uint64_t seed) {
  std::vector<torch::Tensor> out;
  for (int i = 0; i < n; ++i)
    out.push_back(still(180 + 20 * (i % 3), 240 + 16 * (i % 4), seed + i));
  return out;
}

// A camera that only pans (no still shots, zoom, rotation, cut-outs or lighting drift), 64x48.
MotionSettings pans(int clips, int frames, uint64_t seed) {
  return {.clips = clips,
          .frames = frames,
          .width = 64,
          .height = 48,
          .max_pan = 3.0,
          .max_zoom = 0,
          .max_rotation = 0,
          .p_static = 0,
          .p_layers = 0,
          .p_lighting = 0,
          .seed = seed};
}

// A dataset of the motion clips `m` over `photos`.
VideoDataset motion_dataset(const std::vector<torch::Tensor>& photos, const MotionSettings& m) {
  VideoDataset d;
  append_motion_clips(d, photos, m);
  return d;
}

}  // namespace

TEST_CASE("synthetic motion clips are deterministic in their seed and differ across seeds",
          "[train][motion]") {
  const auto photos = stills(3, 1);
  MotionSettings m{.clips = 6, .frames = 8, .width = 64, .height = 48};
  VideoDataset a, b, c;
  append_motion_clips(a, photos, m);
  append_motion_clips(b, photos, m);
  m.seed = 1;
  append_motion_clips(c, photos, m);
  REQUIRE(a.frames.sizes() == torch::IntArrayRef({48, 48, 64, 3}));
  REQUIRE(a.clips.size() == 6);
  CHECK(torch::equal(a.frames, b.frames));
  CHECK(!torch::equal(a.frames, c.frames));
  for (const auto& clip : a.clips) CHECK(clip.train_length == clip.length);  // training only
  // Same dataset, same bytes on disk.
  const auto pa = temp_path("motion_a.safetensors"), pb = temp_path("motion_b.safetensors");
  save_dataset(pa.string(), a);
  save_dataset(pb.string(), b);
  std::ifstream fa(pa, std::ios::binary), fb(pb, std::ios::binary);
  const std::string ba((std::istreambuf_iterator<char>(fa)), {}),
      bb((std::istreambuf_iterator<char>(fb)), {});
  CHECK(ba.size() > 48 * 48 * 64 * 3);
  CHECK(ba == bb);
}

TEST_CASE("a panning camera moves the picture between frames and never leaves the photograph",
          "[train][motion]") {
  // A still camera gives identical frames; a pan changes every frame but keeps the picture
  // (no border fill: the view stays inside the still, so no frame has a constant edge row).
  const auto d = motion_dataset(stills(2, 5), pans(8, 6, 3));
  int moving = 0;
  for (const auto& clip : d.clips) {
    const auto f = d.frames.narrow(0, clip.first, clip.length).to(torch::kFloat32);
    const double change = (f[clip.length - 1] - f[0]).abs().mean().item<double>();
    if (change > 1.0) ++moving;
  }
  CHECK(moving >= 6);
  auto still_cam = pans(3, 5, 4);
  still_cam.p_static = 1;
  const auto s = motion_dataset(stills(2, 5), still_cam);
  for (const auto& clip : s.clips)
    CHECK(torch::equal(s.frames[clip.first], s.frames[clip.first + clip.length - 1]));
}

TEST_CASE("the autoencoder trainer learns and resumes bit-for-bit", "[train][latent]") {
  const auto d = motion_dataset(stills(4, 11), pans(6, 10, 1));
  auto s = dfs_test::ae_train_settings(4, 32, 5, 300);
  const auto cfg = autoencoder_preset("ae-tiny");
  // Held-out pictures: pans over stills the trainer never sees, all frames held out.
  auto test = motion_dataset(stills(2, 500), pans(2, 6, 9));
  for (auto& c : test.clips) c.train_length = 0;
  AutoencoderTrainer straight(cfg, s, d);
  auto untrained = straight.finished(32);
  const double before = evaluate_autoencoder(untrained, test, 6)[0].psnr;
  for (int i = 0; i < 300; ++i) straight.step();
  auto trained = straight.finished(32);
  const double after = evaluate_autoencoder(trained, test, 6)[0].psnr;
  INFO("held-out PSNR " << before << " -> " << after << " dB");
  CHECK(after > before + 5);

  // The preview map, fitted by finished(), is close to the decoder on held-out frames, and far
  // closer than no map (zero weights) would be.
  const auto scores = evaluate_autoencoder(trained, test, 6);
  CHECK(scores[0].psnr_preview_vs_decoder > 22.0);
  {
    torch::NoGradGuard no_grad;
    const auto x = uint8_to_float(test.frames.narrow(0, 0, 6));
    const auto y = trained->decode(trained->encode(x)).clamp(-1, 1);
    const double zero_map = 10 * std::log10(4.0 / y.pow(2).mean().item<double>());
    CHECK(scores[0].psnr_preview_vs_decoder > zero_map + 6);
  }

  s.optimizer.schedule_steps = 40;
  // 20 steps, checkpoint, a new trainer resumes for 20 more == 40 straight.
  AutoencoderTrainer a(cfg, s, d), b(cfg, s, d);
  for (int i = 0; i < 40; ++i) a.step();
  for (int i = 0; i < 20; ++i) b.step();
  const auto ckpt = temp_path("ae.ckpt.safetensors").string();
  b.save_checkpoint(ckpt);
  AutoencoderTrainer c(cfg, s, d);
  c.load_checkpoint(ckpt);
  CHECK(c.step_count() == 20);
  for (int i = 0; i < 20; ++i) c.step();
  const auto ea = a.finished(32), ec = c.finished(32);
  const auto pa = ea->named_parameters(), pc = ec->named_parameters();
  for (const auto& p : pa) CHECK(torch::equal(p.value(), pc[p.key()]));
  // A checkpoint of other settings is refused, naming the difference.
  auto other = s;
  other.crop = 24;
  AutoencoderTrainer d2(cfg, other, d);
  CHECK(dfs_test::refusal_of([&] { d2.load_checkpoint(ckpt); }, "resumed with a different crop")
            .find("crop") != std::string::npos);
}

TEST_CASE("a tiny latent model trained for a fixed number of steps beats copy-last on a pan",
          "[train][latent][slow]") {
  // Training data: pans over textured stills; test: pans over stills never seen.
  auto d = motion_dataset(stills(6, 100), pans(40, 12, 1));
  AutoencoderTrainer ae_trainer(autoencoder_preset("ae-tiny"),
                                dfs_test::ae_train_settings(8, 48, 20, 500), d);
  for (int i = 0; i < 500; ++i) ae_trainer.step();
  auto ae = ae_trainer.finished(256);
  encode_dataset(d, ae);
  auto recipe = train_recipe("latent-tiny");
  // One token per latent pixel (6x8 = 48 tokens of 8 values, 64 wide): a pan moves content
  // from token to token, which attention does directly.
  recipe.model.patch = 1;
  recipe.model.overlap = false;
  recipe.model.dim = 64;
  recipe.model.heads = 4;
  recipe.train.clip_frames = 8;
  recipe.train.schedule_steps = 600;
  Trainer trainer(recipe.model, recipe.train, d);
  trainer.set_autoencoder(ae);
  for (int i = 0; i < 600; ++i) trainer.step();
  const auto path = temp_path("pan_latent.safetensors").string();
  trainer.export_model(path, {{"test", "pan"}});
  Model model = Model::load(path, "cpu");

  const auto test = motion_dataset(stills(3, 900), pans(6, 12, 77));
  const int context = 4, horizon = 4;
  double model_psnr = 0, copy_psnr = 0;
  int scored = 0;
  for (const auto& clip : test.clips) {
    const auto f = test.frames.narrow(0, clip.first, context + horizon);
    const double motion = (f[context].to(torch::kFloat32) - f[context - 1].to(torch::kFloat32))
                              .abs()
                              .mean()
                              .item<double>();
    if (motion < 2.0) continue;  // nearly still: copy-last is the truth
    std::vector<TimelineFrame> timeline(context + horizon);
    for (int i = 0; i < context; ++i) {
      dfs::Frame fr(64, 48);
      std::memcpy(fr.rgb.data(), f[i].contiguous().data_ptr<uint8_t>(), fr.byte_size());
      timeline[i].content = fr;
      timeline[i].pinned = true;
    }
    torch::Tensor sum;
    for (uint64_t seed = 0; seed < 4; ++seed) {
      RolloutSettings rs;
      rs.context = context;
      rs.horizon = horizon;
      rs.seed = seed;
      rs.sampler.schedule.shape = ScheduleShape::FullSequence;
      std::vector<torch::Tensor> gen;
      RolloutCallbacks cb;
      cb.want_preview = false;
      cb.on_frame = [&](int index, const dfs::Frame& fr) {
        if (index >= context)
          gen.push_back(
              torch::from_blob(const_cast<uint8_t*>(fr.rgb.data()), {48, 64, 3}, torch::kUInt8)
                  .clone());
      };
      run_rollout(model, timeline, rs, cb);
      const auto g = torch::stack(gen).to(torch::kFloat64);
      sum = sum.defined() ? sum + g : g;
    }
    const auto mean = (sum / 4).round().to(torch::kUInt8);
    for (int k = 2; k < horizon; ++k) {  // frames 3-4: motion has accumulated
      model_psnr += psnr_u8(mean[k], f[context + k]);
      copy_psnr += psnr_u8(f[context - 1], f[context + k]);
      ++scored;
    }
  }
  REQUIRE(scored >= 4);
  WARN("pan, frames 3-4: mean of 4 " << model_psnr / scored << " dB, copy-last "
                                     << copy_psnr / scored << " dB");
  CHECK(model_psnr / scored > copy_psnr / scored);
}
