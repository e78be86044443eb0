// What the diffusion trainer and the autoencoder trainer share (see train_common.h).
#include "train_common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace dfs::diffusion::train::detail {

// [SECTION] Settings ---------------------------------------------------------------------

void SettingsRequirement::operator()(bool ok, const std::string& message) const {
  if (!ok) throw Error(what_ + ": " + message);
}

std::string json_diff(const nlohmann::json& expected, const nlohmann::json& found,
                      const std::string& prefix) {
  std::string out;
  std::set<std::string> keys;
  for (auto it = expected.begin(); it != expected.end(); ++it) keys.insert(it.key());
  for (auto it = found.begin(); it != found.end(); ++it) keys.insert(it.key());
  for (const auto& k : keys) {
    const auto a = expected.contains(k) ? expected[k].dump() : std::string("(absent)");
    const auto b = found.contains(k) ? found[k].dump() : std::string("(absent)");
    if (a != b)
      out += (out.empty() ? "" : "; ") + prefix + k + ": checkpoint " + b + ", requested " + a;
  }
  return out;
}

// [SECTION] Trainer state and the optimiser step -----------------------------------------

int64_t TrainerCore::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : opt.params) n += p.numel();
  return n;
}

TrainStepStats TrainerCore::finish_step(double loss, const OptimizerSettings& o,
                                        const std::string& what) {
  if (!std::isfinite(loss))
    throw Error(
        what + " diverged at step " + std::to_string(step) +
        " (loss is not finite); lower the learning rate or resume from the last checkpoint");
  TrainStepStats stats;
  stats.loss = loss;
  const double lr = learning_rate_at(o, step);
  stats.learning_rate = lr;
  stats.grad_norm = adamw_update(opt, o, step, lr);
  ++step;
  stats.step = step;
  return stats;
}

// [SECTION] Checkpoints ------------------------------------------------------------------

namespace {

// printf-style `pattern` filled with two strings.
std::string format_message(const char* pattern, const std::string& a, const std::string& b) {
  const int n = std::snprintf(nullptr, 0, pattern, a.c_str(), b.c_str());
  std::string out(static_cast<size_t>(std::max(n, 0)), '\0');
  std::snprintf(out.data(), out.size() + 1, pattern, a.c_str(), b.c_str());
  return out;
}

}  // namespace

MetadataReader checkpoint_metadata(const TensorFile& file, const std::string& path,
                                   const CheckpointKind& kind) {
  return MetadataReader(file, [path, &kind](const std::string& key) {
    return Error(format_message(kind.missing_key, path, key));
  });
}

TensorFile open_checkpoint(const std::string& path, const CheckpointKind& kind) {
  TensorFile file = read_tensor_file(path, "checkpoint");
  const auto meta = checkpoint_metadata(file, path, kind);
  if (meta("format") != kind.format)
    throw Error(format_message(kind.wrong_format, path, meta("format")));
  return file;
}

void read_checkpoint_fields(const std::string& path, const std::function<void()>& read) {
  try {
    read();
  } catch (const nlohmann::json::exception& e) {
    throw Error("checkpoint '" + path + "': bad metadata: " + e.what());
  } catch (const std::logic_error&) {  // stoll / stod
    throw Error("checkpoint '" + path + "': bad step or time in the metadata");
  }
}

void add_optimizer_tensors(const AdamWState& st, std::map<std::string, torch::Tensor>& tensors) {
  for (size_t i = 0; i < st.params.size(); ++i) {
    tensors["model." + st.names[i]] = st.params[i].detach().cpu().contiguous();
    tensors["ema." + st.names[i]] = st.ema[i].detach().cpu().contiguous();
    tensors["adam_m." + st.names[i]] = st.m[i].cpu().contiguous();
    tensors["adam_v." + st.names[i]] = st.v[i].cpu().contiguous();
  }
}

torch::Tensor checkpoint_tensor(const std::map<std::string, torch::Tensor>& tensors,
                                const std::string& name, const torch::Tensor& like,
                                const std::string& path) {
  const auto it = tensors.find(name);
  if (it == tensors.end())
    throw Error("checkpoint '" + path + "' is missing tensor '" + name + "'");
  if (it->second.sizes() != like.sizes() || it->second.scalar_type() != like.scalar_type())
    throw Error("checkpoint '" + path + "': tensor '" + name + "' has the wrong shape or type");
  return it->second;
}

void load_optimizer_tensors(AdamWState& st, const std::map<std::string, torch::Tensor>& tensors,
                            const std::string& path) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < st.params.size(); ++i) {
    const auto& n = st.names[i];
    st.params[i].copy_(checkpoint_tensor(tensors, "model." + n, st.params[i], path));
    st.ema[i].copy_(checkpoint_tensor(tensors, "ema." + n, st.ema[i], path));
    st.m[i].copy_(checkpoint_tensor(tensors, "adam_m." + n, st.m[i], path));
    st.v[i].copy_(checkpoint_tensor(tensors, "adam_v." + n, st.v[i], path));
  }
}

void TrainerCore::save_checkpoint(const std::string& path, const CheckpointKind& kind,
                                  const nlohmann::json& extra) const {
  const RunRecord run = record();
  TensorFile file;
  add_optimizer_tensors(opt, file.tensors);
  add_own_tensors(file.tensors);
  file.metadata["format"] = kind.format;
  file.metadata[kind.config_name + std::string("_config")] = run.config.dump();
  file.metadata["train_settings"] = run.settings.dump();
  file.metadata["step"] = std::to_string(step);
  file.metadata["seconds"] = std::to_string(seconds);
  file.metadata["dataset"] = run.dataset;
  file.metadata["extra"] = extra.is_null() ? "{}" : extra.dump();
  save_safetensors(path, file);
}

void TrainerCore::load_checkpoint(const std::string& path, const CheckpointKind& kind,
                                  const RunRecord& recorded, int64_t checkpoint_step,
                                  double checkpoint_seconds) {
  const RunRecord run = record();
  std::string diff = json_diff(run.config, recorded.config, kind.config_name + std::string("."));
  const auto diff_train = json_diff(run.settings, recorded.settings, "train.");
  if (!diff_train.empty()) diff += (diff.empty() ? "" : "; ") + diff_train;
  if (!diff.empty())
    throw Error("refusing to resume from '" + path + "': its configuration differs (" + diff +
                "). " + kind.resume_advice);
  if (recorded.dataset != run.dataset)
    throw Error("refusing to resume from '" + path + "': it was trained on different data (" +
                recorded.dataset + ", this dataset is " + run.dataset + ")");
  const TensorFile file = load_safetensors(path);
  load_optimizer_tensors(opt, file.tensors, path);
  load_own_tensors(file.tensors, path);
  step = checkpoint_step;
  seconds = checkpoint_seconds;
}

}  // namespace dfs::diffusion::train::detail
