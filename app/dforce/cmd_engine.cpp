// dforce engine commands: schedule, model init, info (bench: cmd_bench.cpp).
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "dfs/diffusion/api.h"
#include "dfs/diffusion/busy_neighbour.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs/diffusion/openmp_policy.h"
#include "dfs/diffusion/weights.h"
#include "dfs/version.h"

namespace dforce {

namespace dd = dfs::diffusion;

namespace {

// [SECTION] schedule ---------------------------------------------------------------------

struct ScheduleArgs {
  std::string mode = "pyramid";
  int steps = 10;
  int frames = 8;
  double uncertainty = 1.0;
  int ar_step = 2;
  int block = 2;
  std::string start_levels;  // comma-separated, overrides --frames
  bool json = false;
};

std::vector<double> parse_levels(const std::string& text) {
  std::vector<double> levels;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      levels.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw dd::Error("--start-levels: '" + item + "' is not a number (expected e.g. 0,0,1,1,0.5)");
    }
  }
  return levels;
}

void run_schedule(const ScheduleArgs& a) {
  dd::ScheduleSettings s;
  s.shape = dd::schedule_shape_from_string(a.mode);
  s.steps = a.steps;
  s.uncertainty = a.uncertainty;
  s.ar_step = a.ar_step;
  s.block = a.block;
  if (a.frames < 1 || a.frames > 4096) throw dd::Error("--frames must be in [1, 4096]");
  const auto start = a.start_levels.empty()
                         ? std::vector<double>(static_cast<size_t>(a.frames), 1.0)
                         : parse_levels(a.start_levels);
  const auto m = dd::build_schedule(s, start);
  if (a.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (int r = 0; r < m.rows; ++r) {
      nlohmann::json row = nlohmann::json::array();
      for (int t = 0; t < m.frames; ++t) row.push_back(m.at(r, t));
      rows.push_back(row);
    }
    nlohmann::json out = {{"shape", dd::to_string(s.shape)},
                          {"steps", m.steps},
                          {"rows", m.rows},
                          {"frames", m.frames},
                          {"uncertainty", s.uncertainty},
                          {"start_levels", start},
                          {"matrix", rows}};
    if (s.shape == dd::ScheduleShape::AsyncBlocks) {
      out["ar_step"] = s.ar_step;
      out["block"] = s.block;
    }
    std::cout << out.dump() << "\n";  // one line: easy to pipe into jq or a script
    return;
  }
  std::printf("# %s, steps %d, %d frames, %d rows (model calls: %d); entry e = level e/%d\n",
              dd::to_string(s.shape), m.steps, m.frames, m.rows, m.rows - 1, m.steps);
  std::cout << dd::to_text(m);
}

// [SECTION] model init / info ------------------------------------------------------------

// Architecture overrides on top of a preset (0 / empty = keep the preset's value).
struct ModelOverrides {
  std::string name;
  int patch = 0, dim = 0, depth = 0, heads = 0, mlp_ratio = 0, max_frames = 0;
  bool causal = false;
};

dd::ModelConfig configure(const std::string& preset, const ModelOverrides& o) {
  auto j = dd::ModelConfig::preset(preset).to_json();
  if (!o.name.empty()) j["name"] = o.name;
  if (o.patch > 0) j["patch"] = o.patch;
  if (o.dim > 0) j["dim"] = o.dim;
  if (o.depth > 0) j["depth"] = o.depth;
  if (o.heads > 0) j["heads"] = o.heads;
  if (o.mlp_ratio > 0) j["mlp_ratio"] = o.mlp_ratio;
  if (o.max_frames > 0) j["max_frames"] = o.max_frames;
  if (o.causal) j["causal"] = true;
  return dd::ModelConfig::from_json(j);  // validates the combination
}

void run_model_init(const std::string& preset, const ModelOverrides& overrides,
                    const std::string& output, uint64_t seed) {
  if (output.empty()) throw dd::Error("model init needs -o <file.safetensors>");
  const auto config = configure(preset, overrides);
  dd::Denoiser net(config);
  net->reset_parameters(seed);
  dd::save_model(output, net, config,
                 {{"source", "random initialisation (dforce model init)"},
                  {"preset", preset},
                  {"seed", seed},
                  {"dforce_version", dfs::kVersion}});
  std::printf("wrote %s: preset %s, %lld parameters, seed %llu (untrained)\n", output.c_str(),
              preset.c_str(), static_cast<long long>(net->parameter_count()),
              static_cast<unsigned long long>(seed));
}

void run_info(const std::string& path) {
  if (path.empty()) {
    print_version();
    return;
  }
  {  // An autoencoder on its own (`dforce ae train` writes one): say what it is.
    const auto file = dd::load_safetensors(path);
    const auto format = file.metadata.find("format");
    if (format != file.metadata.end() && format->second == "dfs-autoencoder-1") {
      auto ae = dd::load_autoencoder_from(file.metadata, file.tensors, path);
      const auto& c = ae->config();
      std::printf("autoencoder: %s\n", path.c_str());
      std::printf("latents    : %d channels, 8x down per side\n", c.latent_channels);
      std::printf("parameters : %lld (encoder) + %lld (decoder) + %lld (preview map)\n",
                  static_cast<long long>(ae->encoder_parameter_count()),
                  static_cast<long long>(ae->decoder_parameter_count()),
                  static_cast<long long>(ae->parameter_count() - ae->encoder_parameter_count() -
                                         ae->decoder_parameter_count()));
      std::printf("normalised : %s\n", c.normalised() ? "yes (latent statistics measured)"
                                                      : "no (statistics not measured yet)");
      std::printf("config     : %s\n", c.to_json().dump(2).c_str());
      const auto prov = file.metadata.find("provenance");
      if (prov != file.metadata.end())
        std::printf("provenance : %s\n",
                    nlohmann::json::parse(prov->second, nullptr, false).dump(2).c_str());
      std::printf(
          "(an autoencoder alone does not generate: train a latent model on it with "
          "`dforce train --autoencoder`, or attach it with `dforce ae attach`)\n");
      return;
    }
  }
  const auto model = dd::Model::load(path, "cpu");
  const auto& info = model.info();
  std::printf("model      : %s\n", path.c_str());
  std::printf("name       : %s\n", info.name.c_str());
  std::printf("resolution : %dx%d, %d channels\n", info.width, info.height, info.channels);
  if (const auto& ae = dd::model_impl(model).ae) {
    std::printf(
        "latents    : %dx%dx%d (8x down), autoencoder %lld + %lld parameters (encoder + "
        "decoder), preview map %d values per latent pixel\n",
        info.latent_width, info.latent_height, info.latent_channels,
        static_cast<long long>(ae->encoder_parameter_count()),
        static_cast<long long>(ae->decoder_parameter_count()), 192);
  }
  std::printf("max frames : %d\n", info.max_frames);
  std::printf("attention  : %s\n", info.causal ? "causal (KV cache)" : "bidirectional");
  std::printf("objective  : %s, %s noise schedule\n", info.objective.c_str(),
              info.noise_schedule.c_str());
  if (const auto& ae = dd::model_impl(model).ae)
    std::printf("parameters : %lld (transformer) + %lld (autoencoder)\n",
                static_cast<long long>(info.parameter_count),
                static_cast<long long>(ae->parameter_count()));
  else
    std::printf("parameters : %lld\n", static_cast<long long>(info.parameter_count));
  std::printf("config     : %s\n", nlohmann::json::parse(info.config_json).dump(2).c_str());
  std::printf("provenance : %s\n", nlohmann::json::parse(info.provenance_json).dump(2).c_str());
}

}  // namespace

void register_engine_commands(CLI::App& app) {
  // schedule
  auto schedule_args = std::make_shared<ScheduleArgs>();
  auto* schedule = app.add_subcommand(
      "schedule", "Print a scheduling matrix (rows = sampling steps, columns = frames)");
  schedule
      ->add_option("--mode", schedule_args->mode,
                   "full_sequence, autoregressive, pyramid, trapezoid or async_blocks")
      ->capture_default_str();
  schedule->add_option("--steps", schedule_args->steps, "Sampling steps S")->capture_default_str();
  schedule
      ->add_option("--frames", schedule_args->frames,
                   "Frames in the window (all generated from noise)")
      ->capture_default_str();
  schedule
      ->add_option("--uncertainty,-u", schedule_args->uncertainty,
                   "Pyramid/trapezoid lag u in steps")
      ->capture_default_str();
  schedule
      ->add_option("--ar-step", schedule_args->ar_step, "async_blocks: lag between blocks (steps)")
      ->capture_default_str();
  schedule->add_option("--block", schedule_args->block, "async_blocks: frames per block")
      ->capture_default_str();
  schedule->add_option(
      "--start-levels", schedule_args->start_levels,
      "Per-frame start levels in [0, 1], comma-separated (0 = pinned); overrides --frames");
  schedule->add_flag("--json", schedule_args->json, "Print JSON instead of text");
  schedule->callback([schedule_args] { run_schedule(*schedule_args); });

  // model init
  auto* model = app.add_subcommand("model", "Model files");
  model->require_subcommand(1);
  auto init_preset = std::make_shared<std::string>("demo");
  auto init_output = std::make_shared<std::string>();
  auto init_seed = std::make_shared<uint64_t>(0);
  auto* init = model->add_subcommand(
      "init", "Write a randomly initialised model (untrained) to a .safetensors file");
  init->add_option("--config", *init_preset, "Preset: demo, demo-causal, tiny, tiny-causal")
      ->capture_default_str();
  init->add_option("-o,--output", *init_output, "Output .safetensors file")->required();
  init->add_option("--seed", *init_seed, "Initialisation seed")->capture_default_str();
  auto overrides = std::make_shared<ModelOverrides>();
  init->add_option("--name", overrides->name, "Override: model name");
  init->add_option("--patch", overrides->patch, "Override: stem downsampling factor");
  init->add_option("--dim", overrides->dim, "Override: transformer width");
  init->add_option("--depth", overrides->depth, "Override: space-time blocks");
  init->add_option("--heads", overrides->heads, "Override: attention heads");
  init->add_option("--mlp-ratio", overrides->mlp_ratio, "Override: MLP width / dim");
  init->add_option("--max-frames", overrides->max_frames, "Override: longest window");
  init->add_flag("--causal", overrides->causal, "Override: causal temporal attention");
  init->callback([=] { run_model_init(*init_preset, *overrides, *init_output, *init_seed); });

  // info
  auto info_path = std::make_shared<std::string>();
  auto* info =
      app.add_subcommand("info",
                         "Without a file: version, LibTorch, BLAS, threads, CUDA. With a model "
                         "file: its config, parameter count and provenance");
  info->add_option("model", *info_path, "A .safetensors model file");
  info->callback([info_path] { run_info(*info_path); });
}

}  // namespace dforce
