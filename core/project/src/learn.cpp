// learn.cpp — "Learn this clip" in the project layer (dfs/project/learn.h): decode, the run's
// files, interrupted runs, what a model was trained on.
#include "dfs/project/learn.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dfs/clock_text.h"
#include "dfs/media/decoder.h"
#include "dfs/project/generation.h"
#include "errors.h"

namespace dfs::project {

namespace fs = std::filesystem;
using detail::translate_errors;

namespace {

std::string without_safetensors(const std::string& path) {
  fs::path p(path);
  if (p.extension() == ".safetensors") p.replace_extension("");
  return p.string();
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

// The files of a run besides the model: state, checkpoint, latent cache.
void remove_run_files(const std::string& output, const std::string& checkpoint) {
  remove_quietly(learning_state_path(output));
  remove_quietly(checkpoint);
  remove_quietly(without_safetensors(output) + ".latents.safetensors");
  remove_quietly(without_safetensors(output) + ".preview.safetensors");
}

std::string resolve_start_model(const LearnRequest& r) {
  std::string from = r.model_path;
  std::error_code ec;
  if (!from.empty() && !fs::is_regular_file(from, ec)) {
    if (fs::path(from).filename() != "demo.safetensors")
      throw Error("the project's model file '" + from + "' does not exist");
    from.clear();
  }
  if (from.empty()) from = find_demo_model(r.executable_path);
  if (from.empty())
    throw Error(
        "no model file to start learning from: the shipped demo model was not found "
        "($DFS_MODEL, models/demo.safetensors); load a model first");
  return from;
}

}  // namespace

std::string learned_model_path(const std::string& owner) {
  const fs::path p(owner);
  return (p.parent_path() / (p.stem().string() + ".learned.safetensors")).string();
}

std::string learning_state_path(const std::string& learned_model) {
  return without_safetensors(learned_model) + ".learning.json";
}

double PendingLearning::minutes_left() const {
  return std::max(0.25, minutes - seconds_done / 60.0);
}

std::optional<PendingLearning> find_pending_learning(const std::string& owner) {
  if (owner.empty()) return std::nullopt;
  const std::string output = learned_model_path(owner);
  const std::string state = learning_state_path(output);
  std::error_code ec;
  if (!fs::is_regular_file(state, ec)) return std::nullopt;
  try {
    std::ifstream in(state);
    const auto j = nlohmann::json::parse(in);
    PendingLearning p;
    p.state_file = state;
    p.output = j.at("output").get<std::string>();
    p.checkpoint = j.at("checkpoint").get<std::string>();
    p.clip_path = j.at("clip").get<std::string>();
    p.model_path = j.at("from").get<std::string>();
    p.minutes = j.at("minutes").get<double>();
    p.started = j.value("started", "");
    p.fit = fit_mode_from_string(j.value("fit", "letterbox"));
    if (!fs::is_regular_file(p.checkpoint, ec)) return std::nullopt;
    const auto info = diffusion::read_learn_checkpoint(p.checkpoint);
    p.steps_done = info.steps;
    p.seconds_done = info.seconds;
    return p;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable state or checkpoint: nothing to resume
  }
}

void discard_pending_learning(const PendingLearning& pending) {
  remove_run_files(pending.output, pending.checkpoint);
  remove_quietly(pending.state_file);
}

std::vector<Frame> decode_clip_frames(const std::string& clip_path, int width, int height,
                                      FitMode fit, int max_frames) {
  return translate_errors("cannot decode '" + clip_path + "'", [&] {
    media::DecoderOptions o;
    o.width = width;
    o.height = height;
    o.fit = fit;
    o.cache_frames = 0;
    auto decoder = media::open_decoder(clip_path, o);
    std::vector<Frame> frames;
    while (auto f = decoder->read()) {
      frames.push_back(std::move(f->image));
      if (max_frames > 0 && static_cast<int>(frames.size()) >= max_frames) break;
    }
    return frames;
  });
}

diffusion::LearnResult learn_clip(const LearnRequest& r, const diffusion::LearnCallbacks& cb) {
  if (r.clip_path.empty()) throw Error("open a clip first: learning fine-tunes the model on it");
  if (r.owner.empty()) throw Error("learning needs a project or clip to save the model beside");
  if (!(r.minutes > 0)) throw Error("the learning budget must be more than 0 minutes");
  const std::string from = resolve_start_model(r);
  const auto info = translate_errors("cannot load model '" + from + "'",
                                     [&] { return diffusion::Model::load(from, "cpu").info(); });
  const auto frames = decode_clip_frames(r.clip_path, info.width, info.height, r.fit, r.max_frames);
  if (frames.size() < 3)
    throw Error("'" + r.clip_path + "' gave " + std::to_string(frames.size()) +
                " frames: learning needs at least 3 (some are held out to measure on)");
  diffusion::LearnSettings s;
  s.from = from;
  s.output = learned_model_path(r.owner);
  s.checkpoint = without_safetensors(s.output) + ".ckpt.safetensors";
  s.minutes = r.minutes;
  s.checkpoint_minutes = r.checkpoint_minutes;
  s.resume = r.resume;
  s.clip_name = fs::path(r.clip_path).stem().string();
  s.clip_source = fs::path(r.clip_path).filename().string();
  s.fit = to_string(r.fit);
  s.device = r.device;
  s.sample_frames = r.sample_frames;
  std::ostringstream cmd;
  cmd << "dfstudio: Learn this clip " << s.clip_source << " (" << r.minutes << " min"
      << (r.resume ? ", resumed" : "") << ", from " << fs::path(from).filename().string() << ")";
  s.command = cmd.str();
  if (r.resume) {
    std::error_code ec;
    if (!fs::is_regular_file(s.checkpoint, ec))
      throw Error("nothing to resume: the checkpoint '" + s.checkpoint + "' is gone");
  } else {
    remove_run_files(s.output, s.checkpoint);  // an old run's leftovers must not be resumed
  }
  const nlohmann::json state = {{"version", 1},         {"clip", r.clip_path},
                                {"from", from},         {"fit", to_string(r.fit)},
                                {"output", s.output},   {"checkpoint", s.checkpoint},
                                {"minutes", r.minutes}, {"started", dfs::now_utc()}};
  const std::string state_file = learning_state_path(s.output);
  if (!r.resume) write_file_atomically(state_file, state.dump(2) + "\n");
  diffusion::LearnResult result;
  try {
    result =
        translate_errors("learning failed", [&] { return diffusion::learn_frames(frames, s, cb); });
  } catch (...) {
    std::error_code ec;
    if (!fs::is_regular_file(s.checkpoint, ec)) remove_quietly(state_file);
    throw;
  }
  if (cb.abandon == nullptr || !cb.abandon->load()) remove_run_files(s.output, s.checkpoint);
  return result;
}

std::string describe_training(const std::string& provenance_json) {
  const auto j = nlohmann::json::parse(provenance_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("data")) return "";
  const auto& data = j["data"];
  std::ostringstream os;
  const bool learned = data.contains("provenance") && data["provenance"].is_object() &&
                       data["provenance"].value("made_by", "") == "learn this clip";
  os << (learned ? "Learned from " : "Trained on ");
  if (data.contains("clips") && data["clips"].is_array() && !data["clips"].empty()) {
    const auto& clips = data["clips"];
    if (clips.size() == 1) {
      const auto& c = clips[0];
      os << c.value("source", c.value("name", "?")) << " (" << c.value("train_frames", 0)
         << " training frames, " << c.value("held_out_frames", 0) << " held out)";
    } else {
      os << clips.size() << " clips (" << data.value("file", "?") << ")";
    }
  } else {
    os << data.value("file", "?");
  }
  os << ", " << j.value("steps", 0) << " steps in " << dfs::format_clock(j.value("seconds", 0.0));
  const std::string from = j.value("from", "");
  if (!from.empty()) os << ", starting from " << fs::path(from).filename().string();
  const std::string date = j.value("date", "");
  if (!date.empty()) os << " (" << date << ")";
  return os.str();
}

}  // namespace dfs::project
