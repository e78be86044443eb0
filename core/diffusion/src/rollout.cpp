// Rollouts of any length: plan the sliding windows, run each through the sampler, stream
// final frames out in timeline order (docs/DESIGN.md "Guidance horizon and arbitrary length").
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs/diffusion/sampler.h"
#include "fast_cpu.h"
#include "helper_thread.h"

namespace dfs::diffusion {

namespace {

// uint8 RGB [0, 255] <-> float [-1, 1]: x = p / 127.5 - 1.
torch::Tensor frame_to_tensor(const Frame& frame) {
  auto bytes = torch::from_blob(const_cast<std::uint8_t*>(frame.rgb.data()),
                                {frame.height, frame.width, 3}, torch::kUInt8);
  return bytes.permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0).contiguous();
}

Frame tensor_to_frame(const torch::Tensor& value) {
  const auto bytes = value.detach()
                         .to(torch::kCPU, torch::kFloat32)
                         .add(1.0)
                         .mul(127.5)
                         .round()
                         .clamp(0, 255)
                         .to(torch::kUInt8)
                         .permute({1, 2, 0})
                         .contiguous();
  Frame frame(static_cast<int>(value.size(2)), static_cast<int>(value.size(1)));
  std::memcpy(frame.rgb.data(), bytes.data_ptr(), frame.byte_size());
  return frame;
}

// How timeline frames enter the sampler and leave it. Pixel models: frames are the tensors
// (uint8 <-> [-1, 1]). Latent models: frames are encoded to normalised latents, generated
// latents are decoded once, when final; previews go through the autoencoder's cheap linear map.
class FrameCodec {
 public:
  // exact: LibTorch's default layouts and the reference 9x9 mean (the exact mode's bytes).
  FrameCodec(Model::Impl& model, bool exact)
      : model_(model),
        ae_(model.ae),
        device_(model.device),
        channels_last_(!exact && model.device.is_cpu()) {}
  bool latent() const { return static_cast<bool>(ae_); }
  // Latent frames decoded by the fast CPU path: what a helper thread may decode (the exact
  // mode keeps decoding between forwards, as the reference does).
  bool fast_latent() const { return latent() && channels_last_; }

  // Frames (model resolution) -> [N, C, h, w] on the CPU.
  torch::Tensor encode(const std::vector<const Frame*>& frames) {
    std::vector<torch::Tensor> pixels;
    for (const Frame* f : frames) pixels.push_back(frame_to_tensor(*f));
    if (pixels.empty()) return {};
    const auto x = torch::stack(pixels);
    if (!latent()) return x;
    torch::InferenceMode guard;
    return ae_->encode(layout(x.to(device_))).to(torch::kCPU, torch::kFloat32).contiguous();
  }
  // [N, C, h, w] -> [N, 3, H, W] pixels in [-1, 1] on the CPU.
  torch::Tensor decode_pixels(const torch::Tensor& values) {
    if (!latent()) return values;
    torch::InferenceMode guard;
    if (channels_last_) {  // the fast mode's decoder, as decode() runs it
      std::vector<torch::Tensor> frames;
      for (int64_t i = 0; i < values.size(0); ++i)
        frames.push_back(decode_hwc(values.narrow(0, i, 1)).permute({2, 0, 1}));
      return torch::stack(frames).clamp(-1, 1).contiguous();
    }
    return ae_->decode(layout(values.to(device_)))
        .clamp(-1, 1)
        .to(torch::kCPU, torch::kFloat32)
        .contiguous();
  }
  // [N, C, h, w] -> frames. With references (latent models; one per frame, each a pair of the
  // reference's decoding and its true pixels, or undefined tensors for none), the references'
  // detail is transferred where the scene is static (transfer_detail).
  std::vector<Frame> decode(
      const torch::Tensor& values,
      const std::vector<std::pair<torch::Tensor, torch::Tensor>>& references = {}) {
    std::vector<Frame> out;
    if (!values.defined() || values.size(0) == 0) return out;
    if (latent() && channels_last_) {
      // Fast CPU mode: a frame at a time (a 12-frame batch's decoder activations, ~28 MB at
      // 128x96x48, fall out of the cache: 46.7 against 53 frames/s for full_sequence s10 on the
      // 2-core VM), decoded by oneDNN's Winograd plan where there is one (fast_decoder.h), its
      // decoding turned into bytes, detail transfer included, in one fused pass that reads the
      // decoder's last pixel shuffle in place (fast_cpu.h).
      torch::InferenceMode guard;
      for (int64_t i = 0; i < values.size(0); ++i) {
        int64_t shuffle = 1;
        const auto decoded = decode_frame(model_, values.narrow(0, i, 1), false, &shuffle);
        const auto* ref = static_cast<size_t>(i) < references.size() ? &references[i] : nullptr;
        Frame frame(static_cast<int>(decoded.size(1) * shuffle),
                    static_cast<int>(decoded.size(0) * shuffle));
        fast::finish_shuffled_frame(decoded, shuffle, ref ? ref->first : torch::Tensor(),
                                    ref ? ref->second : torch::Tensor(), kDetailTolerance,
                                    frame.rgb.data());
        out.push_back(std::move(frame));
      }
      return out;
    }
    const torch::Tensor pixels = decode_pixels(values);
    for (int64_t i = 0; i < pixels.size(0); ++i) {
      const auto* ref = static_cast<size_t>(i) < references.size() ? &references[i] : nullptr;
      if (ref && ref->first.defined()) {
        torch::InferenceMode guard;
        out.push_back(
            tensor_to_frame(transfer_detail(pixels[i], ref->first, ref->second, kDetailTolerance)));
      } else {
        out.push_back(tensor_to_frame(pixels[i]));
      }
    }
    return out;
  }
  // A cheap look at a current estimate [C, h, w] (the preview map for latents).
  Frame preview(const torch::Tensor& value) {
    if (!latent()) return tensor_to_frame(value);
    torch::InferenceMode guard;
    return tensor_to_frame(ae_->preview(value.unsqueeze(0).to(device_))[0].clamp(-1, 1));
  }

 private:
  // One frame [1, C, h, w] -> [H, W, 3], the fast mode's decoder (model_impl.h).
  torch::Tensor decode_hwc(const torch::Tensor& value) {
    return decode_frame(model_, value, false);
  }
  // Channels-last activations let oneDNN's CPU convolutions run 20-30 % faster (same maths;
  // the exact mode keeps LibTorch's default layout and so its bytes).
  torch::Tensor layout(const torch::Tensor& x) const {
    return channels_last_ ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
  }
  Model::Impl& model_;
  Autoencoder ae_;
  torch::Device device_;
  bool channels_last_;
};

void validate(const ModelInfo& model, const std::vector<TimelineFrame>& timeline,
              const RolloutSettings& settings) {
  if (settings.horizon < 1)
    throw Error("the horizon must be at least 1 frame, got " + std::to_string(settings.horizon));
  if (settings.context < 0)
    throw Error("the context must be >= 0 frames, got " + std::to_string(settings.context));
  if (settings.context + settings.horizon > model.max_frames)
    throw Error("context " + std::to_string(settings.context) + " + horizon " +
                std::to_string(settings.horizon) + " exceeds the model's " +
                std::to_string(model.max_frames) + " frames");
  if (model.channels != 3)
    throw Error("rollouts need an RGB model (3 channels), this one has " +
                std::to_string(model.channels));
  validate_sampler_settings(settings.sampler);
  for (size_t i = 0; i < timeline.size(); ++i) {
    const auto& f = timeline[i];
    const std::string where = "timeline frame " + std::to_string(i);
    if (!f.pinned && !(f.start_level >= 0.0 && f.start_level <= 1.0))
      throw Error(where + ": start level must be in [0, 1], got " + std::to_string(f.start_level));
    const bool needs_content = f.pinned || f.start_level < 1.0;
    if (needs_content && f.content.empty())
      throw Error(where + (f.pinned ? " is pinned" : " is partially re-noised") +
                  " but has no content");
    if (!f.content.empty() && (f.content.width != model.width || f.content.height != model.height))
      throw Error(where + " is " + std::to_string(f.content.width) + "x" +
                  std::to_string(f.content.height) + " but the model takes " +
                  std::to_string(model.width) + "x" + std::to_string(model.height));
    if (!f.content.empty() && f.content.rgb.size() != f.content.byte_size())
      throw Error(where + " has " + std::to_string(f.content.rgb.size()) +
                  " bytes of pixels, expected " + std::to_string(f.content.byte_size()));
  }
}

}  // namespace

std::vector<WindowPlan> plan_rollout(const ModelInfo& model,
                                     const std::vector<TimelineFrame>& timeline,
                                     const RolloutSettings& settings) {
  validate(model, timeline, settings);
  const int n = static_cast<int>(timeline.size());
  std::vector<WindowPlan> plans;
  int next = 0;
  while (true) {
    while (next < n && timeline[next].pinned) ++next;
    if (next >= n) break;
    WindowPlan plan;
    plan.first = std::max(0, next - settings.context);
    // Context: the last `context` positions before `next`, all final (pinned or generated).
    for (int i = plan.first; i < next; ++i) {
      plan.frames.push_back(i);
      plan.known.push_back(true);
    }
    // Horizon: the next `horizon` unpinned frames; pins in between condition in place.
    int generated = 0;
    int i = next;
    while (i < n && generated < settings.horizon &&
           static_cast<int>(plan.frames.size()) < model.max_frames) {
      plan.frames.push_back(i);
      plan.known.push_back(timeline[i].pinned);
      if (!timeline[i].pinned) ++generated;
      ++i;
    }
    // Look-ahead: a bidirectional model also sees pins after the horizon that lie within its
    // reach (time positions < max_frames from the window start), so an end frame shapes the
    // frames leading to it. A causal model could not use them.
    if (!model.causal) {
      for (int j = i; j < n && static_cast<int>(plan.frames.size()) < model.max_frames &&
                      j - plan.first < model.max_frames;
           ++j) {
        if (!timeline[j].pinned) continue;
        plan.frames.push_back(j);
        plan.known.push_back(true);
      }
    }
    std::vector<double> start;
    for (size_t k = 0; k < plan.frames.size(); ++k)
      start.push_back(plan.known[k] ? 0.0 : timeline[plan.frames[k]].start_level);
    plan.matrix = build_schedule(settings.sampler.schedule, start);
    plans.push_back(std::move(plan));
    next = i;
  }
  return plans;
}

RolloutResult run_rollout(Model& model, const std::vector<TimelineFrame>& timeline,
                          const RolloutSettings& settings, const RolloutCallbacks& callbacks) {
  const auto started = std::chrono::steady_clock::now();
  Model::Impl& impl = model_impl(model);
  const auto plans = plan_rollout(impl.info, timeline, settings);
  const int n = static_cast<int>(timeline.size());

  RolloutResult result;
  RolloutProgress progress;
  progress.windows = static_cast<int>(plans.size());
  for (const auto& plan : plans) progress.total_steps += plan.matrix.rows - 1;

  // Generated frames, kept only while they can still be context or wait to be emitted. A latent
  // model also keeps each generated frame's latent: later windows condition on it directly
  // (decoding and re-encoding would compound the autoencoder's error).
  std::map<int, Frame> generated;
  std::map<int, torch::Tensor> generated_latent;
  std::map<int, torch::Tensor> encoded;  // latent models: encodings of timeline content
  FrameCodec codec(impl, settings.exact);
  int next_emit = 0;
  const auto emit_ready = [&] {
    while (next_emit < n) {
      const auto& f = timeline[next_emit];
      if (f.pinned) {
        if (callbacks.on_frame) callbacks.on_frame(next_emit, f.content);
      } else {
        const auto it = generated.find(next_emit);
        if (it == generated.end()) break;
        if (callbacks.on_frame) callbacks.on_frame(next_emit, it->second);
      }
      ++next_emit;
    }
    progress.frames_final = next_emit;
  };
  emit_ready();

  // Latent models with detail transfer: each generated frame takes the detail of its nearest
  // pinned frame (the earlier one on a tie). References are (decoding, true pixels), made when
  // first needed and kept for the few most recent.
  std::vector<int> pinned_indices;
  if (codec.latent() && settings.detail_transfer)
    for (int i = 0; i < n; ++i)
      if (timeline[i].pinned) pinned_indices.push_back(i);
  std::map<int, std::pair<torch::Tensor, torch::Tensor>> references;
  const auto reference_for = [&](int index) -> std::pair<torch::Tensor, torch::Tensor> {
    if (pinned_indices.empty()) return {};
    const auto after = std::lower_bound(pinned_indices.begin(), pinned_indices.end(), index);
    int nearest = after == pinned_indices.end() ? pinned_indices.back() : *after;
    if (after != pinned_indices.begin() &&
        (after == pinned_indices.end() || index - *std::prev(after) <= *after - index))
      nearest = *std::prev(after);
    if (const auto it = references.find(nearest); it != references.end()) return it->second;
    const Frame& content = timeline[nearest].content;
    const auto found = encoded.find(nearest);
    const torch::Tensor latent =
        found != encoded.end() ? found->second.unsqueeze(0) : codec.encode({&content});
    std::pair<torch::Tensor, torch::Tensor> ref{codec.decode_pixels(latent)[0],
                                                frame_to_tensor(content)};
    if (references.size() >= 4) references.erase(references.begin());
    references[nearest] = ref;
    return ref;
  };

  // Frames the helper thread decoded, waiting to be taken in on this thread (they are emitted
  // here, in timeline order). Declared before the helper, which must stop first.
  struct Decoded {
    std::mutex mutex;
    std::vector<std::pair<int, Frame>> frames;
    double seconds = 0;
  } background;
  std::unique_ptr<HelperThread> helper;
  const auto collect = [&] {
    if (!helper) return;
    std::vector<std::pair<int, Frame>> frames;
    {
      const std::lock_guard<std::mutex> lock(background.mutex);
      frames.swap(background.frames);
      result.seconds_decode += background.seconds;
      result.seconds_decode_helper += background.seconds;
      background.seconds = 0;
    }
    for (auto& [index, frame] : frames) generated[index] = std::move(frame);
    if (!frames.empty()) emit_ready();
  };

  auto generator = at::detail::createCPUGenerator(settings.seed);
  ModelDenoiser denoiser(impl, settings.kv_cache, settings.exact);
  const auto seconds_since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const DenoiseFn network = denoiser.fn();
  const DenoiseFn denoise = [&](const DenoiseCall& call) {
    const auto t0 = std::chrono::steady_clock::now();
    auto x0 = network(call);
    result.seconds_model += seconds_since(t0);
    return x0;
  };
  const int channels = impl.config.channels;

  for (size_t w = 0; w < plans.size() && !result.cancelled; ++w) {
    const WindowPlan& plan = plans[w];
    const int frames = static_cast<int>(plan.frames.size());
    WindowInput input;
    input.matrix = plan.matrix;
    input.x0_clamp = impl.x0_clamp;
    input.all_estimates = callbacks.want_preview;
    input.content = torch::zeros({frames, channels, impl.config.height, impl.config.width});
    // Timeline content this window needs (pins, partial re-noising), encoded in one batch.
    std::vector<int> to_encode;
    std::vector<const Frame*> to_encode_frames;
    for (int k = 0; k < frames; ++k) {
      const int index = plan.frames[k];
      const auto& f = timeline[index];
      const bool needs = f.pinned || (!plan.known[k] && !f.content.empty() && f.start_level < 1.0);
      if (needs && !encoded.count(index)) {
        to_encode.push_back(index);
        to_encode_frames.push_back(&f.content);
      }
    }
    if (!to_encode.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto values = codec.encode(to_encode_frames);
      result.seconds_encode += seconds_since(t0);
      for (size_t i = 0; i < to_encode.size(); ++i)
        encoded[to_encode[i]] = values[static_cast<int64_t>(i)];
    }
    std::vector<float> positions;
    for (int k = 0; k < frames; ++k) {
      const int index = plan.frames[k];
      const auto& f = timeline[index];
      positions.push_back(static_cast<float>(index - plan.first));
      if (f.pinned) {
        input.roles.push_back(FrameRole::KnownUser);
        input.content[k].copy_(encoded.at(index));
      } else if (plan.known[k]) {
        input.roles.push_back(FrameRole::KnownGenerated);
        // Pixel models condition on the frame as emitted (uint8), as they always have.
        input.content[k].copy_(codec.latent() ? generated_latent.at(index)
                                              : frame_to_tensor(generated.at(index)));
      } else {
        input.roles.push_back(FrameRole::Generate);
        if (!f.content.empty() && f.start_level < 1.0) input.content[k].copy_(encoded.at(index));
      }
    }
    input.positions = torch::tensor(positions);

    progress.window = static_cast<int>(w);
    progress.window_first = plan.first;
    // Frames that became final this row, decoded together (one batched decoder call), on the
    // helper thread when the network leaves a core to it.
    std::vector<std::pair<int, torch::Tensor>> pending;
    const auto flush = [&] {
      collect();
      if (pending.empty()) return;
      const auto t0 = std::chrono::steady_clock::now();  // references included
      std::vector<torch::Tensor> values;
      std::vector<std::pair<torch::Tensor, torch::Tensor>> refs;
      std::vector<int> indices;
      for (const auto& [k, v] : pending) {
        values.push_back(v);
        refs.push_back(reference_for(plan.frames[k]));
        indices.push_back(plan.frames[k]);
        if (codec.latent()) generated_latent[plan.frames[k]] = v;
      }
      pending.clear();
      if (codec.fast_latent() && helper_thread_wanted()) {
        if (!helper) helper = std::make_unique<HelperThread>();
        result.seconds_decode += seconds_since(t0);
        // A job per frame: what is still queued when the run ends, the rollout's thread
        // decodes itself (HelperThread::finish).
        for (size_t i = 0; i < indices.size(); ++i)
          helper->post([&codec, &background, index = indices[i], ref = refs[i],
                        value = values[i].unsqueeze(0)] {
            const auto t1 = std::chrono::steady_clock::now();
            auto frames = codec.decode(value, {ref});
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
            const std::lock_guard<std::mutex> lock(background.mutex);
            background.frames.emplace_back(index, std::move(frames.at(0)));
            background.seconds += seconds;
          });
        return;
      }
      const auto decoded = codec.decode(torch::stack(values), refs);
      result.seconds_decode += seconds_since(t0);
      for (size_t i = 0; i < indices.size(); ++i) generated[indices[i]] = decoded[i];
      emit_ready();
    };
    WindowCallbacks window_callbacks;
    window_callbacks.cancel = callbacks.cancel;
    window_callbacks.on_final = [&](int k, const torch::Tensor& value) {
      if (input.roles[k] != FrameRole::Generate) return;
      pending.emplace_back(k, value.clone());
    };
    window_callbacks.on_step = [&](int row, int, const torch::Tensor& x0) {
      flush();
      ++progress.step;
      progress.matrix_row = row;
      progress.preview.clear();
      if (callbacks.want_preview) {
        for (int k = 0; k < frames; ++k)
          if (input.roles[k] == FrameRole::Generate)
            progress.preview.emplace_back(plan.frames[k], codec.preview(x0[k]));
      }
      if (callbacks.on_progress) callbacks.on_progress(progress);
    };

    denoiser.reset();
    WindowResult window;
    try {
      window = sample_window(denoise, impl.schedule, input, settings.sampler, generator,
                             window_callbacks);
    } catch (const Error& e) {
      if (helper) {  // what was decoded before the failure is kept too
        try {
          helper->finish();
          collect();
        } catch (const std::exception&) {
        }
      }
      throw Error(std::string(e.what()) + ", window " + std::to_string(w + 1) + " of " +
                  std::to_string(plans.size()) + "; the " + std::to_string(next_emit) +
                  " frames before it were kept");
    }
    flush();
    result.cancelled = window.cancelled;
    if (!window.cancelled) {
      // Frames that started clean (start level 0, unpinned) are final without any step.
      // (A latent frame's latent is kept when it is handed to the decoder, which may still be
      // decoding it on the helper thread.)
      for (int k = 0; k < frames; ++k)
        if (input.roles[k] == FrameRole::Generate &&
            !(codec.latent() ? generated_latent.count(plan.frames[k])
                             : generated.count(plan.frames[k])))
          pending.emplace_back(k, window.frames[k].clone());
      flush();
    }
    // Forget generated frames (and encodings) no later window needs.
    const int keep_from = w + 1 < plans.size() ? plans[w + 1].first : n;
    for (auto it = generated.begin(); it != generated.end();) {
      if (it->first < keep_from && it->first < next_emit) {
        generated_latent.erase(it->first);
        it = generated.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = encoded.begin(); it != encoded.end();)
      it = it->first < keep_from ? encoded.erase(it) : std::next(it);
  }
  if (helper) {  // the frames still decoding (a cancelled run keeps them too)
    // The network is done: this wait is decoding on the wall clock, not beside the network.
    const auto t0 = std::chrono::steady_clock::now();
    helper->finish();
    collect();
    result.seconds_decode_helper = std::max(0.0, result.seconds_decode_helper - seconds_since(t0));
  }
  result.frames_final = next_emit;
  result.model_forwards = denoiser.forwards();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace dfs::diffusion
