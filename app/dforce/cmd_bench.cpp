// dforce bench: sampling speed (transformer, encoder, decoder apart), idle and beside a busy
// neighbour, training speed, and data-parallel all-reduce cost.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
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

#include "bench_reports.h"
#include "commands.h"
#include "dfs/diffusion/api.h"
#include "dfs/diffusion/busy_neighbour.h"
#include "dfs/diffusion/denoise.h"
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

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  in >> load;
  return load;
}

long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

struct BenchCase {
  std::string name;
  std::string preset;
  dd::ScheduleShape shape;
  int steps;
  dd::GuidanceMode guidance;
  bool kv_cache;
};

struct BenchArgs {
  bool json = false;
  bool quick = false;
  std::string preset = "latent";
  int context = 4;
  int horizon = 12;
  int frames = 0;          // generated frames per case; 0 = automatic
  std::string model_path;  // bench this file's architecture instead of the preset
  bool train = false;      // training speed instead (run_train_bench)
  std::string recipe = "demo-cpu";
  int train_steps = 10;
  bool contended = false;  // also run every case beside a busy loop on one core
  int world = 1;           // --train: also data-parallel with this many local processes
  bool exact = false;      // the reference kernels (RolloutSettings::exact)
  std::string solver = "ddim";
  std::vector<std::string> cases;  // only these cases, by name (as tools/python_eager's --cases)
  int steps = 0;                   // replaces the 10-step cases' step count (0 = keep)
  bool reference = false;  // also the roofline report (forward GFLOP/s against a dense GEMM)
  std::string device = "cpu";
  std::string precision = "auto";  // DFS_PRECISION for the models benched
  bool cuda_graphs = false;        // DFS_CUDA_GRAPHS=1
  std::vector<int> batches;        // also the model-bound rate with this many windows batched
};

// `bench --train --world N`: training samples/s in 1 process, then in N local data-parallel
// processes (dforce launch), with the gradient all-reduce time per step.
void run_train_world_bench(const BenchArgs& a) {
  namespace fs = std::filesystem;
  std::printf("dforce bench --train: recipe %s, %d timed steps, global batch from the recipe\n",
              a.recipe.c_str(), a.train_steps);
  std::printf("  %-10s %8s %12s %12s %16s\n", "processes", "threads", "s/step", "samples/s",
              "all-reduce ms");
  const auto report =
      (fs::temp_directory_path() / ("dforce_bench_train_" + std::to_string(getpid()) + ".json"))
          .string();
  double one = 0;
  for (const int n : {1, a.world}) {
    if (n == 1 && one > 0) continue;
    std::vector<std::string> args = {
        "train-bench", "--config", a.recipe, "--steps", std::to_string(a.train_steps),
        "--report",    report};
    std::fflush(stdout);
    const int rc = launch_ranks(n, 0, args, 5);
    if (rc != 0) throw dd::Error("the " + std::to_string(n) + "-process training bench failed");
    std::ifstream in(report);
    const auto j = nlohmann::json::parse(in);
    fs::remove(report);
    const double rate = j["samples_per_second"].get<double>();
    if (n == 1) one = rate;
    std::printf("  %-10d %8d %12.3f %12.2f %16.1f", n, j["threads"].get<int>(),
                j["seconds_per_step"].get<double>(), rate,
                j["allreduce_ms_per_step"].get<double>());
    if (n > 1) std::printf("   (%.2fx the 1-process rate)", rate / std::max(1e-9, one));
    std::printf("\n");
  }
}

dfs::Frame bench_frame(int w, int h, int seed) {
  dfs::Frame f(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        f.row(y)[3 * x + c] = static_cast<std::uint8_t>((x * 4 + y * 2 + seed * 9 + c * 60) & 255);
  return f;
}

// Times one forward of a full window and each stage of it, for the "where does time go" line.
nlohmann::json profile_forward(dd::Model& model, int window, int repeats, bool exact) {
  auto& net = dd::model_impl(model).net;
  const auto& c = net->config();
  torch::InferenceMode guard;
  const auto x = torch::randn({1, window, c.channels, c.height, c.width});
  const auto levels = torch::rand({1, window});
  const auto forward = [&] {
    return exact ? net->forward(x, levels) : net->forward_fast(x, levels);
  };
  forward();  // warm-up
  dd::ForwardProfile profile;
  net->set_profile(&profile);
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = process_cpu_seconds();
  for (int i = 0; i < repeats; ++i) forward();
  if (dd::model_impl(model).device.is_cuda()) torch::cuda::synchronize();
  const double total =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
      repeats;
  const double cpu_total = (process_cpu_seconds() - cpu0) * 1000.0 / repeats;
  net->set_profile(nullptr);
  const auto ms = [&](double seconds) { return seconds * 1000.0 / repeats; };
  return {{"window_frames", window},
          {"ms_forward", total},
          {"cpu_ms_forward", cpu_total},
          {"cpu_ms_embed_stem", ms(profile.embed_stem)},
          {"cpu_ms_spatial_attention", ms(profile.spatial)},
          {"cpu_ms_temporal_attention", ms(profile.temporal)},
          {"cpu_ms_mlp", ms(profile.mlp)},
          {"cpu_ms_modulation", ms(profile.modulation)},
          {"cpu_ms_head", ms(profile.head)}};
}

void run_bench(const BenchArgs& a) {
  const auto runtime = dd::runtime_info();
  const std::string causal_preset = "causal";
  std::vector<BenchCase> cases = {
      {"full_sequence s10", a.preset, dd::ScheduleShape::FullSequence, 10, dd::GuidanceMode::None,
       false},
      {"pyramid s10", a.preset, dd::ScheduleShape::Pyramid, 10, dd::GuidanceMode::None, false},
      {"full_sequence s10 guided", a.preset, dd::ScheduleShape::FullSequence, 10,
       dd::GuidanceMode::Vanilla, false},
      {"pyramid s10 guided", a.preset, dd::ScheduleShape::Pyramid, 10, dd::GuidanceMode::Vanilla,
       false},
      {"causal full_sequence s10", causal_preset, dd::ScheduleShape::FullSequence, 10,
       dd::GuidanceMode::None, false},
      {"causal+KV full_sequence s10", causal_preset, dd::ScheduleShape::FullSequence, 10,
       dd::GuidanceMode::None, true},
      {"causal+KV pyramid s10", causal_preset, dd::ScheduleShape::Pyramid, 10,
       dd::GuidanceMode::None, true},
      {"full_sequence s50", a.preset, dd::ScheduleShape::FullSequence, 50, dd::GuidanceMode::None,
       false},
      {"pyramid s50", a.preset, dd::ScheduleShape::Pyramid, 50, dd::GuidanceMode::None, false},
      {"full_sequence s50 guided", a.preset, dd::ScheduleShape::FullSequence, 50,
       dd::GuidanceMode::Vanilla, false},
  };
  if (!a.cases.empty()) {
    // By the names above, from the whole list, in the order given: one case per process lets
    // a sitting alternate with Python's bench case by case.
    std::vector<BenchCase> chosen;
    for (const auto& name : a.cases) {
      const auto found = std::find_if(cases.begin(), cases.end(),
                                      [&](const BenchCase& c) { return c.name == name; });
      const auto all = [&] {
        std::string names;
        for (const auto& c : cases) names += (names.empty() ? "" : ", ") + c.name;
        return names;
      };
      if (found == cases.end())
        throw std::runtime_error("bench: no case named '" + name + "' (the cases: " + all() + ")");
      chosen.push_back(*found);
    }
    cases = std::move(chosen);
  } else if (a.quick) {
    cases.resize(7);  // the 10-step cases
  }
  if (a.steps > 0)
    for (auto& c : cases)
      if (c.steps == 10) {
        c.steps = a.steps;
        c.name.replace(c.name.find(" s10"), 4, " s" + std::to_string(a.steps));
      }
  const auto solver = dd::solver_from_string(a.solver);
  if (solver != dd::Solver::Ddim)
    for (auto& c : cases) c.name += " " + a.solver;

  setenv("DFS_PRECISION", a.precision.c_str(), 1);
  if (a.cuda_graphs) setenv("DFS_CUDA_GRAPHS", "1", 1);
  if (a.cuda_graphs && a.device.rfind("cuda", 0) != 0 && !a.json)
    std::printf("note: --cuda-graphs applies to a CUDA device only; ignored on %s\n",
                a.device.c_str());
  auto model = a.model_path.empty() ? dd::Model::random(a.preset, 0, a.device)
                                    : dd::Model::load(a.model_path, a.device);
  auto causal_model = model;
  if (!model.info().causal) {
    // The same architecture with causal attention, randomly initialised.
    auto config = dd::ModelConfig::from_json(nlohmann::json::parse(model.info().config_json));
    config.causal = true;
    auto impl = std::make_shared<dd::Model::Impl>(dd::model_impl(model));
    impl->config = config;
    impl->net = dd::Denoiser(config);
    impl->net->to(impl->device, impl->dtype);
    impl->net->eval();
    impl->info.causal = true;
    impl->info.name += "-causal";
    causal_model = dd::Model(impl);
  }
  const auto& info = model.info();
  if (a.context + a.horizon > info.max_frames)
    throw dd::Error("--context + --horizon exceeds the model's " + std::to_string(info.max_frames) +
                    " frames");

  nlohmann::json report = {
      {"version", runtime.version},
      {"torch", runtime.torch_version},
      {"blas", runtime.blas},
      {"threads", runtime.threads},
      {"device", info.device},
      {"model", info.name},
      {"resolution", std::to_string(info.width) + "x" + std::to_string(info.height)},
      {"parameters", info.parameter_count},
      {"context", a.context},
      {"horizon", a.horizon},
      {"load_average", load_average()},
      {"openmp_wait", dd::openmp_wait_policy()},
      {"contended", a.contended},
      {"exact", a.exact},
      {"precision", a.precision},
      {"cuda_graphs", a.cuda_graphs},
      {"solver", a.solver},
      // The causal rows' weights: a non-causal model's causal variant is randomly initialised.
      {"causal_weights", model.info().causal && !a.model_path.empty() ? "file" : "random"},
      {"cases", nlohmann::json::array()}};
  if (!a.json) {
    std::printf(
        "dforce bench: model %s (%dx%d, %lld parameters, %s), device %s\n", info.name.c_str(),
        info.width, info.height, static_cast<long long>(info.parameter_count),
        a.model_path.empty() ? "random weights" : "weights from the file", info.device.c_str());
    std::printf("  libtorch %s, BLAS %s, %d threads; context %d + horizon %d frames per window\n",
                runtime.torch_version.c_str(), runtime.blas.c_str(), runtime.threads, a.context,
                a.horizon);
    std::printf(
        "  machine load average %.1f before the run (frames/s is wall-clock; cpu s sums all "
        "threads)\n",
        load_average());
    std::printf("  OpenMP wait policy: %s; kernels: %s; solver %s\n",
                dd::openmp_wait_policy().c_str(), a.exact ? "reference (--exact)" : "fast CPU",
                a.solver.c_str());
    if (!info.causal && !a.model_path.empty())
      std::printf(
          "  the causal rows run %s-causal: this architecture with causal attention and random "
          "weights (the file's model is not causal; speed only)\n",
          info.name.c_str());
    std::printf("  %-34s %7s %8s %9s %8s %9s %10s %9s", "case", "frames", "seconds", "frames/s",
                "cpu s", "forwards", "ms/forward", "peak RSS");
    if (a.contended) std::printf(" %10s %8s", "busy fr/s", "slowdown");
    std::printf("\n");
  }

  // One timed rollout of case `c`; the numbers that go into the report.
  const auto measure = [&](const BenchCase& c) {
    auto& m = c.preset == causal_preset ? causal_model : model;
    const int generated =
        a.frames > 0 ? a.frames : (c.steps >= 50 ? a.horizon : (a.quick ? 2 : 4) * a.horizon);
    std::vector<dd::TimelineFrame> timeline(static_cast<size_t>(a.context + generated));
    for (int i = 0; i < a.context; ++i) {
      timeline[i].content = bench_frame(info.width, info.height, i);
      timeline[i].pinned = true;
    }
    dd::RolloutSettings settings;
    settings.context = a.context;
    settings.horizon = a.horizon;
    settings.kv_cache = c.kv_cache;
    settings.exact = a.exact;
    settings.sampler.solver = solver;
    settings.sampler.schedule.shape = c.shape;
    settings.sampler.schedule.steps = c.steps;
    settings.sampler.schedule.uncertainty = 1.0;
    settings.sampler.guidance.mode = c.guidance;
    settings.sampler.guidance.scale = 1.5;
    int frames_out = 0;
    dd::RolloutCallbacks callbacks;
    callbacks.want_preview = false;
    callbacks.on_frame = [&](int index, const dfs::Frame&) {
      if (index >= a.context) ++frames_out;
    };
    const double cpu0 = process_cpu_seconds();
    const auto result = dd::run_rollout(m, timeline, settings, callbacks);
    const double cpu = process_cpu_seconds() - cpu0;
    return nlohmann::json{
        {"case", c.name},
        {"shape", dd::to_string(c.shape)},
        {"steps", c.steps},
        {"guidance", dd::to_string(c.guidance)},
        {"causal", m.info().causal},
        {"kv_cache", c.kv_cache},
        {"frames", frames_out},
        {"seconds", result.seconds},
        {"cpu_seconds", cpu},
        {"frames_per_cpu_second", frames_out / cpu},
        {"frames_per_second", frames_out / result.seconds},
        {"forwards", result.model_forwards},
        {"ms_per_forward", 1000.0 * result.seconds / std::max(1, result.model_forwards)},
        {"ms_model", 1000.0 * result.seconds_model},
        {"ms_decode", 1000.0 * result.seconds_decode},
        {"ms_encode", 1000.0 * result.seconds_encode},
        {"ms_decode_helper", 1000.0 * result.seconds_decode_helper},
        {"ms_other",
         1000.0 * (result.seconds - result.seconds_model -
                   (result.seconds_decode - result.seconds_decode_helper) - result.seconds_encode)},
        {"peak_rss_mib", peak_rss_kib() / 1024.0}};
  };

  double worst_slowdown = 0;
  for (const auto& c : cases) {
    auto row = measure(c);
    if (a.contended) {
      dd::BusyNeighbour busy;
      // A user's busy program was already running when they started: let it run 0.3 s first.
      // Started at the timed run's first step, right after the idle run, it stayed invisible
      // to the engine's load check (load_adaptive.h) for that run's first 0.2-0.4 s, a bench
      // artefact that weighed 10-20 % in the 0.4 s quick cases.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      const auto loaded = measure(c);
      row["contended_seconds"] = loaded["seconds"];
      row["contended_frames_per_second"] = loaded["frames_per_second"];
      row["contended_cpu_seconds"] = loaded["cpu_seconds"];
      row["contended_ms_decode_helper"] = loaded["ms_decode_helper"];
      row["contended_slowdown"] =
          loaded["seconds"].get<double>() / std::max(1e-9, row["seconds"].get<double>());
      worst_slowdown = std::max(worst_slowdown, row["contended_slowdown"].get<double>());
    }
    report["cases"].push_back(row);
    if (!a.json) {
      std::printf("  %-34s %7d %8.2f %9.1f %8.2f %9d %10.1f %7.0f MiB", c.name.c_str(),
                  row["frames"].get<int>(), row["seconds"].get<double>(),
                  row["frames_per_second"].get<double>(), row["cpu_seconds"].get<double>(),
                  row["forwards"].get<int>(), row["ms_per_forward"].get<double>(),
                  row["peak_rss_mib"].get<double>());
      if (a.contended)
        std::printf(" %10.1f %7.2fx", row["contended_frames_per_second"].get<double>(),
                    row["contended_slowdown"].get<double>());
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  if (!a.json) {
    std::printf(
        "  where each case's time went (ms): network forwards / decoding frames / "
        "encoding frames / sampler and the rest\n");
    for (const auto& row : report["cases"]) {
      std::printf("    %-32s %7.0f / %5.0f / %5.0f / %5.0f", row["case"].get<std::string>().c_str(),
                  row["ms_model"].get<double>(), row["ms_decode"].get<double>(),
                  row["ms_encode"].get<double>(), row["ms_other"].get<double>());
      if (const double helper = row["ms_decode_helper"].get<double>(); helper > 0)
        std::printf("  (decoding: %.0f ms of it on the helper thread)", helper);
      std::printf("\n");
    }
  }
  if (a.contended) {
    report["contended_worst_slowdown"] = worst_slowdown;
    if (!a.json)
      std::printf(
          "  contended: each case run again beside a busy-loop process pinned to CPU %d; worst "
          "slowdown %.2fx (bar: <= 2x)\n",
          std::max(1u, std::thread::hardware_concurrency()) - 1, worst_slowdown);
  }

  if (!a.cases.empty()) {  // the chosen cases only (as Python's bench), no profile
    if (a.json) std::cout << report.dump(2) << "\n";
    return;
  }
  const auto profile = profile_forward(model, a.context + a.horizon, a.quick ? 3 : 10, a.exact);
  report["profile"] = profile;
  if (a.reference) report["reference"] = reference_report(model, a.context + a.horizon, a.json);
  if (!a.batches.empty())
    report["batched"] = batched_windows_report(
        model, a.context, a.horizon, a.steps > 0 ? a.steps : 10, a.exact, a.batches, a.json);
  if (dd::model_impl(model).ae) {
    // A latent model's three parts, timed apart: the encoder (context frames, once per pinned
    // frame), the decoder (once per final frame, a window's new frames at a time) and the
    // preview map (every step, for live previews).
    auto& ae = dd::model_impl(model).ae;
    torch::InferenceMode guard;
    const auto& ci = dd::model_impl(model).config;
    const auto device = dd::model_impl(model).device;
    // The rollout's layout: channels-last on the CPU unless --exact (rollout.cpp FrameCodec).
    const auto layout = [&](const torch::Tensor& t) {
      return a.exact || !device.is_cpu() ? t : t.contiguous(torch::MemoryFormat::ChannelsLast);
    };
    const auto pixels =
        layout((torch::rand({a.horizon, 3, info.height, info.width}) * 2 - 1).to(device));
    const auto latents =
        layout(torch::randn({a.horizon, ci.channels, ci.height, ci.width}).to(device));
    const int reps = a.quick ? 3 : 10;
    auto time_ms = [&](const std::function<void()>& fn) {
      fn();  // warm-up
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) fn();
      if (device.is_cuda()) torch::cuda::synchronize();
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                 .count() /
             (reps * a.horizon);
    };
    const double enc = time_ms([&] { ae->encode(pixels); });
    // The decoder as the rollout runs it: a frame at a time (and beside it LibTorch's own
    // kernels, when the fast mode decodes with oneDNN's Winograd plan).
    auto& impl = dd::model_impl(model);
    const double dec = time_ms([&] {
      int64_t shuffle = 1;  // the fast mode's frame finish reads the last pixel shuffle in place
      for (int64_t i = 0; i < latents.size(0); ++i)
        dd::decode_frame(impl, latents.narrow(0, i, 1), a.exact, a.exact ? nullptr : &shuffle);
    });
    const std::string dec_kernels = dd::decoder_kernels(impl, a.exact);
    double dec_libtorch = dec;
    if (!a.exact && impl.fast_decoder)
      dec_libtorch = time_ms([&] {
        for (int64_t i = 0; i < latents.size(0); ++i) ae->decode(latents.narrow(0, i, 1));
      });
    const double pre = time_ms([&] { ae->preview(latents); });
    const double tf = profile["ms_forward"].get<double>();
    const auto& first = report["cases"][0];
    const double forwards_per_frame =
        first["forwards"].get<double>() / std::max(1.0, first["frames"].get<double>());
    report["autoencoder"] = {
        {"encoder_ms_per_frame", enc},
        {"decoder_ms_per_frame", dec},
        {"decoder_kernels", dec_kernels},
        {"decoder_libtorch_ms_per_frame", dec_libtorch},
        {"preview_ms_per_frame", pre},
        {"encoder_parameters", ae->encoder_parameter_count()},
        {"decoder_parameters", ae->decoder_parameter_count()},
        {"transformer_ms_per_forward", tf},
        {"transformer_ms_per_frame_full_sequence_s10", tf * forwards_per_frame}};
    char libtorch_note[64] = "";
    if (dec_libtorch != dec)
      std::snprintf(libtorch_note, sizeof libtorch_note, ", LibTorch %.1f ms", dec_libtorch);
    if (!a.json)
      std::printf(
          "  latent model, %dx%dx%d latents: encoder %.1f ms/frame (%lld parameters), decoder "
          "%.1f ms/frame (%lld parameters; %s%s), preview map %.2f ms/frame; transformer %.1f "
          "ms per %d-frame forward = %.1f ms per generated frame in the first case\n",
          ci.width, ci.height, ci.channels, enc,
          static_cast<long long>(ae->encoder_parameter_count()), dec,
          static_cast<long long>(ae->decoder_parameter_count()), dec_kernels.c_str(), libtorch_note,
          pre, tf, a.context + a.horizon, tf * forwards_per_frame);
  }
  if (a.json) {
    std::cout << report.dump(2) << "\n";
    return;
  }
  std::printf(
      "  one %d-frame forward: %.1f ms wall, %.1f ms CPU; CPU ms by stage: embed+stem %.1f, "
      "spatial attention %.1f, temporal attention "
      "%.1f, MLP %.1f, adaLN modulation %.1f, head %.1f ms\n",
      a.context + a.horizon, profile["ms_forward"].get<double>(),
      profile["cpu_ms_forward"].get<double>(), profile["cpu_ms_embed_stem"].get<double>(),
      profile["cpu_ms_spatial_attention"].get<double>(),
      profile["cpu_ms_temporal_attention"].get<double>(), profile["cpu_ms_mlp"].get<double>(),
      profile["cpu_ms_modulation"].get<double>(), profile["cpu_ms_head"].get<double>());
  std::printf("  target: >= 24 generated frames/s at 10 steps without guidance (first row)\n");
}

}  // namespace

void register_bench_commands(CLI::App& app) {
  auto bench_args = std::make_shared<BenchArgs>();
  auto* bench =
      app.add_subcommand("bench",
                         "Measure generation speed (frames/s, ms per forward, peak RSS) on the "
                         "shipped architecture with random weights (latent models: transformer, "
                         "encoder and decoder apart)");
  bench->add_flag("--json", bench_args->json, "Print JSON");
  bench->add_flag("--quick", bench_args->quick, "Only the 10-step cases, fewer frames");
  bench->add_option("--solver", bench_args->solver, "Update rule: ddim or dpmpp-2m")
      ->check(CLI::IsMember({"ddim", "dpmpp-2m"}))
      ->capture_default_str();
  bench
      ->add_option("--steps", bench_args->steps,
                   "Sampling steps of the 10-step cases instead (e.g. fewer with dpmpp-2m)")
      ->check(CLI::Range(1, 1000));
  bench->add_flag("--reference", bench_args->reference,
                  "Also report the forward's GFLOP/s against a dense GEMM of this machine, "
                  "measured in the same run");
  bench->add_option("--device", bench_args->device, "cpu, cuda or cuda:N")->capture_default_str();
  bench
      ->add_option("--precision", bench_args->precision,
                   "Weights and activations: auto (bf16 on CUDA, fp32 on the CPU), fp32 or bf16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->capture_default_str();
  bench->add_flag("--cuda-graphs", bench_args->cuda_graphs,
                  "CUDA: replay each window's forward as a captured CUDA graph");
  bench->add_option("--batch", bench_args->batches,
                    "Also time this many windows batched into one forward (model-bound "
                    "frames/s); several values allowed");
  bench->add_flag(
      "--exact", bench_args->exact,
      "The reference kernels (the exact mode: a LibTorch eager port's bytes) instead of "
      "the fast CPU kernels");
  bench
      ->add_option("--config", bench_args->preset,
                   "Model preset (latent, demo or tiny; its -causal variant is used too)")
      ->capture_default_str();
  bench->add_option("--context", bench_args->context, "Known frames per window")
      ->capture_default_str();
  bench->add_option("--horizon", bench_args->horizon, "Generated frames per window")
      ->capture_default_str();
  bench->add_option("--frames", bench_args->frames, "Generated frames per case (0 = automatic)");
  bench->add_option("--model", bench_args->model_path,
                    "Bench this model file's architecture instead of --config");
  bench->add_flag("--train", bench_args->train,
                  "Measure training instead: samples/s and peak memory of --recipe");
  bench->add_option("--recipe", bench_args->recipe, "Training recipe for --train")
      ->capture_default_str();
  bench
      ->add_option("--world", bench_args->world,
                   "With --train: also train data-parallel in this many local processes (Gloo) "
                   "and compare")
      ->check(CLI::Range(1, 64));
  bench
      ->add_option("--cases", bench_args->cases,
                   "Only these cases, by name (comma-separated or repeated), e.g. "
                   "--cases 'pyramid s10,full_sequence s50'")
      ->delimiter(',');
  bench->add_flag("--contended", bench_args->contended,
                  "Run every case twice: idle, then beside a busy-loop process on one core; "
                  "report both and the slowdown");
  bench->add_option("--train-steps", bench_args->train_steps, "Timed training steps for --train")
      ->capture_default_str();
  bench->callback([bench_args] {
    if (bench_args->train && bench_args->world > 1)
      run_train_world_bench(*bench_args);
    else if (bench_args->train)
      run_train_bench(bench_args->recipe, bench_args->train_steps, "auto", 0, bench_args->json);
    else
      run_bench(*bench_args);
  });
}

}  // namespace dforce
