// The decoder on oneDNN's Winograd convolutions (see fast_decoder.h).
#include "fast_decoder.h"

#include "dfs/diffusion/autoencoder.h"

#ifdef DFS_HAVE_DNNL

#include <dnnl.hpp>

#include <ATen/Parallel.h>
#ifdef DFS_HAVE_OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dfs::diffusion::fast {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
constexpr Tag kBlocked = Tag::nChw16c;  // what oneDNN's AVX-512 Winograd reads and writes

// One layer of the decoder, as the plan understands it.
struct Layer {
  enum Kind { Conv, Residual, Silu, Upsample, PixelShuffle } kind = Conv;
  torch::Tensor weight, bias;        // Conv
  torch::Tensor a_w, a_b, b_w, b_b;  // Residual
  int64_t factor = 2;                // Upsample, PixelShuffle
};

bool plain_conv3(const torch::nn::Conv2dImpl& c) {
  const auto& o = c.options;
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  return o.kernel_size()->at(0) == 3 && o.kernel_size()->at(1) == 3 && o.stride()->at(0) == 1 &&
         o.stride()->at(1) == 1 && o.dilation()->at(0) == 1 && o.dilation()->at(1) == 1 &&
         o.groups() == 1 && pad != nullptr && (*pad)->at(0) == 1 && (*pad)->at(1) == 1 &&
         c.weight.scalar_type() == torch::kFloat32 && c.weight.device().is_cpu();
}

// The decoder's layers, or empty when one is not understood.
std::vector<Layer> read_layers(AutoencoderImpl& ae) {
  std::vector<Layer> layers;
  const auto conv_weights = [](const torch::nn::Conv2dImpl& c) {
    return std::make_pair(c.weight.detach().contiguous(),
                          c.bias.defined() ? c.bias.detach().contiguous() : torch::Tensor());
  };
  for (size_t i = 0; i < ae.decoder->size(); ++i) {
    const auto module = ae.decoder->ptr(i);
    Layer layer;
    if (const auto* conv = module->as<torch::nn::Conv2dImpl>()) {
      if (!plain_conv3(*conv)) return {};
      std::tie(layer.weight, layer.bias) = conv_weights(*conv);
    } else if (const auto* block = module->as<ResidualBlockImpl>()) {
      if (!plain_conv3(*block->a) || !plain_conv3(*block->b)) return {};
      layer.kind = Layer::Residual;
      std::tie(layer.a_w, layer.a_b) = conv_weights(*block->a);
      std::tie(layer.b_w, layer.b_b) = conv_weights(*block->b);
    } else if (module->as<torch::nn::SiLUImpl>() != nullptr) {
      layer.kind = Layer::Silu;
    } else if (const auto* up = module->as<torch::nn::UpsampleImpl>()) {
      const auto& scale = up->options.scale_factor();
      if (!c10::holds_alternative<torch::enumtype::kNearest>(up->options.mode()) ||
          !scale.has_value() || scale->size() != 2 || (*scale)[0] != 2.0 || (*scale)[1] != 2.0)
        return {};
      layer.kind = Layer::Upsample;
    } else if (const auto* shuffle = module->as<torch::nn::PixelShuffleImpl>()) {
      if (i + 1 != ae.decoder->size()) return {};
      layer.kind = Layer::PixelShuffle;
      layer.factor = shuffle->options.upscale_factor();
    } else {
      return {};
    }
    layers.push_back(std::move(layer));
  }
  return layers;
}

// Every primitive of a plan takes its scratch memory from the plan (oneDNN's "user" mode). In
// its default mode oneDNN hands a primitive a scratchpad of the creating thread: the Studio
// builds a model's plans on the GUI thread and decodes on its generation thread, where that
// crashed.
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The primitives of one latent size, executed in order, and their buffers.
class Plan {
 public:
  Plan(const std::vector<Layer>& layers, int64_t channels, int64_t h, int64_t w) {
    const auto started = std::chrono::steady_clock::now();
    auto& eng = cpu_engine();
    input_ = memory({{1, channels, h, w}, kF32, Tag::nchw}, eng, DNNL_MEMORY_NONE);
    int slot = 0;  // main-path activations alternate between buffer slots 0 and 1
    memory cur = buffer({1, channels, h, w}, slot);
    reorder(input_, cur);
    int64_t shuffle = 1;
    for (const Layer& layer : layers) {
      const memory::dims dims = cur.get_desc().dims();
      switch (layer.kind) {
        case Layer::Conv: {
          slot ^= 1;
          const memory out = buffer({1, layer.weight.size(0), dims[2], dims[3]}, slot);
          conv(cur, layer.weight, layer.bias, out, false);
          cur = out;
          break;
        }
        case Layer::Residual: {  // the residual's temporaries have their own slots
          const memory t = buffer(dims, -1);
          silu(cur, t);
          const memory u = buffer({1, layer.a_w.size(0), dims[2], dims[3]}, -2);
          conv(t, layer.a_w, layer.a_b, u, false);
          silu(u, u);
          conv(u, layer.b_w, layer.b_b, cur, true);  // cur += b(u): the sum a post-op
          break;
        }
        case Layer::Silu:
          silu(cur, cur);
          break;
        case Layer::Upsample: {
          slot ^= 1;
          const memory out = buffer({dims[0], dims[1], dims[2] * 2, dims[3] * 2}, slot);
          const dnnl::resampling_forward::desc op(dnnl::prop_kind::forward_inference,
                                                  dnnl::algorithm::resampling_nearest,
                                                  cur.get_desc(), out.get_desc());
          const dnnl::resampling_forward::primitive_desc pd(op, user_scratchpad(), eng);
          add(dnnl::resampling_forward(pd), {{DNNL_ARG_SRC, cur}, {DNNL_ARG_DST, out}}, pd);
          cur = out;
          break;
        }
        case Layer::PixelShuffle:
          shuffle = layer.factor;
          break;
      }
    }
    const memory::dims dims = cur.get_desc().dims();
    if (dims[1] != 3 * shuffle * shuffle) throw std::runtime_error("not an RGB decoder");
    shuffle_ = shuffle;
    out_h_ = dims[2];
    out_w_ = dims[3];
    out_c_ = dims[1];
    output_ = memory({dims, kF32, Tag::nhwc}, eng, DNNL_MEMORY_NONE);
    reorder(cur, output_);
    // One scratch buffer serves every step (they run one after another).
    if (scratch_bytes_ > 0) {
      scratch_.reset(
          static_cast<std::uint8_t*>(std::aligned_alloc(64, (scratch_bytes_ + 63) / 64 * 64)));
      if (!scratch_) throw std::bad_alloc();
      for (const auto& [step, desc] : scratch_descs_)
        steps_[step].second[DNNL_ARG_SCRATCHPAD] = memory(desc, eng, scratch_.get());
    }
    build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                   .count();
  }

  // The last activation before the pixel shuffle, [out_h, out_w, 3 r r] (channels-last).
  torch::Tensor run_unshuffled(dnnl::stream& stream, const torch::Tensor& latent) {
    const auto in = latent.to(torch::kFloat32).contiguous();
    auto out = torch::empty({out_h_, out_w_, out_c_}, torch::kFloat32);
    input_.set_data_handle(in.data_ptr());
    output_.set_data_handle(out.data_ptr());
    for (auto& [primitive, args] : steps_) primitive.execute(stream, args);
    stream.wait();
    return out;
  }

  torch::Tensor run(dnnl::stream& stream, const torch::Tensor& latent) {
    const auto out = run_unshuffled(stream, latent);
    if (shuffle_ == 1) return out;
    // Channel c * r * r + i * r + j of latent pixel (y, x) is pixel (y * r + i, x * r + j).
    const int64_t r = shuffle_;
    return out.view({out_h_, out_w_, 3, r, r})
        .permute({0, 3, 1, 4, 2})
        .contiguous()
        .view({out_h_ * r, out_w_ * r, 3});
  }

  int64_t shuffle() const { return shuffle_; }

  int convolutions = 0, winograd = 0, winograd_4x3 = 0;
  double build_ms = 0;            // primitives created, weights reordered
  bool reference_kernel = false;  // oneDNN fell back to a reference (slow) implementation

 private:
  using Args = std::unordered_map<int, memory>;

  void add(dnnl::primitive primitive, Args args, const dnnl::primitive_desc_base& pd) {
    if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) reference_kernel = true;
    const memory::desc scratch = pd.scratchpad_desc();
    if (scratch.get_size() > 0) {
      scratch_descs_.emplace_back(steps_.size(), scratch);
      scratch_bytes_ = std::max(scratch_bytes_, scratch.get_size());
    }
    steps_.emplace_back(std::move(primitive), std::move(args));
  }

  void reorder(const memory& from, const memory& to) {
    const dnnl::reorder::primitive_desc pd(from, to, user_scratchpad());
    add(dnnl::reorder(pd), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, pd);
  }

  // A blocked activation buffer, one per (shape, slot).
  memory buffer(const memory::dims& dims, int slot) {
    std::vector<int64_t> key(dims.begin(), dims.end());
    key.push_back(slot);
    auto& found = buffers_[key];
    if (!found) found = memory({dims, kF32, kBlocked}, cpu_engine());
    return found;
  }

  void silu(const memory& src, const memory& dst) {
    const dnnl::eltwise_forward::desc op(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::eltwise_swish, src.get_desc(), 1.f, 0.f);
    const dnnl::eltwise_forward::primitive_desc pd(op, user_scratchpad(), cpu_engine());
    add(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, pd);
  }

  // 3x3 convolution, padding 1, of `src` into `dst` (added to it when `sum`).
  void conv(const memory& src, const torch::Tensor& weight, const torch::Tensor& bias,
            const memory& dst, bool sum) {
    auto& eng = cpu_engine();
    const memory::dims wd{weight.size(0), weight.size(1), 3, 3};
    dnnl::primitive_attr attr = user_scratchpad();
    if (sum) {
      dnnl::post_ops ops;
      ops.append_sum(1.f);
      attr.set_post_ops(ops);
    }
    const memory::desc bias_md =
        bias.defined() ? memory::desc({weight.size(0)}, kF32, Tag::x) : memory::desc();
    dnnl::convolution_forward::primitive_desc pd;
    bool winograd = true;
    for (const auto algorithm :
         {dnnl::algorithm::convolution_winograd, dnnl::algorithm::convolution_direct}) {
      try {
        // Named: the implementation iterator below reads the operation's description.
        const dnnl::convolution_forward::desc op(dnnl::prop_kind::forward_inference, algorithm,
                                                 src.get_desc(), memory::desc(wd, kF32, Tag::any),
                                                 bias_md, dst.get_desc(), {1, 1}, {1, 1}, {1, 1});
        pd = dnnl::convolution_forward::primitive_desc(op, attr, eng);
        // oneDNN lists F(2x2, 3x3) first; its F(4x4, 3x3) kernel, where offered, ran these
        // layers another 1.1-1.4x faster on the VM (4x fewer multiplications than direct).
        if (algorithm == dnnl::algorithm::convolution_winograd) {
          const auto first = pd;
          bool found = false;
          do found = std::string(pd.impl_info_str()).find("wino_4x3") != std::string::npos;
          while (!found && pd.next_impl());
          if (!found) pd = first;
        }
        break;
      } catch (const dnnl::error&) {
        if (algorithm == dnnl::algorithm::convolution_direct) throw;
        winograd = false;
      }
    }
    ++convolutions;
    if (winograd) ++this->winograd;
    if (std::string(pd.impl_info_str()).find("wino_4x3") != std::string::npos) ++winograd_4x3;
    // Weights (OIHW in the module) reordered once into the primitive's own format.
    memory user_w({wd, kF32, Tag::oihw}, eng, weight.data_ptr());
    memory w(pd.weights_desc(), eng);
    dnnl::stream stream(eng);
    dnnl::reorder(user_w, w).execute(stream, user_w, w);
    Args args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}};
    if (bias.defined()) {
      memory b(pd.bias_desc(), eng);
      std::memcpy(b.get_data_handle(), bias.data_ptr(), bias.numel() * sizeof(float));
      args[DNNL_ARG_BIAS] = b;
    }
    stream.wait();
    add(dnnl::convolution_forward(pd), std::move(args), pd);
  }

  std::vector<std::pair<dnnl::primitive, Args>> steps_;
  std::vector<std::pair<size_t, memory::desc>> scratch_descs_;  // (step, its scratchpad)
  size_t scratch_bytes_ = 0;
  struct Free {
    void operator()(std::uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<std::uint8_t, Free> scratch_;
  std::map<std::vector<int64_t>, memory> buffers_;
  memory input_, output_;
  int64_t shuffle_ = 1, out_h_ = 0, out_w_ = 0, out_c_ = 0;
};

class DnnlDecoder final : public FastDecoder {
 public:
  DnnlDecoder(std::vector<Layer> layers, int64_t channels)
      : layers_(std::move(layers)), channels_(channels), stream_(cpu_engine()) {}

  // The plan for h x w at the current intra-op thread count (oneDNN sizes a primitive's work
  // split when it is created, and the engine follows the machine's load between 1 and all
  // cores: load_adaptive.h), built on first use; null when oneDNN refuses a primitive or would
  // run a reference kernel.
  Plan* plan(int64_t h, int64_t w) {
    const std::array<int64_t, 3> key{h, w, at::get_num_threads()};
    if (plans_.size() >= 8 && !plans_.count(key)) plans_.clear();  // sizes seen: a handful
    auto& found = plans_[key];
    if (!found && !refused_.count(key)) {
      try {
        found = std::make_unique<Plan>(layers_, channels_, h, w);
      } catch (const std::exception&) {
        found.reset();
      }
      if (found && (found->reference_kernel || found->winograd == 0)) found.reset();
      if (!found) refused_.insert(key);
    }
    return found.get();
  }

  torch::Tensor decode_hwc(const torch::Tensor& raw_latent) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Plan* p = plan_for(raw_latent);
    return p == nullptr ? torch::Tensor() : p->run(stream_, raw_latent.cpu());
  }

  torch::Tensor decode_unshuffled(const torch::Tensor& raw_latent, int64_t& shuffle) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Plan* p = plan_for(raw_latent);
    if (p == nullptr) return {};
    shuffle = p->shuffle();
    return p->run_unshuffled(stream_, raw_latent.cpu());
  }

  std::string describe() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, p] : plans_)
      if (p)
        return "oneDNN Winograd" + std::string(p->winograd_4x3 ? " F(4x4,3x3)" : " F(2x2,3x3)") +
               ": " + std::to_string(p->winograd) + " of " + std::to_string(p->convolutions) +
               " convolutions, " + std::to_string(plans_.size()) +
               (plans_.size() == 1 ? " plan (" : " plans (") +
               std::to_string(static_cast<int>(p->build_ms + 0.5)) + " ms to build one)";
    return "oneDNN: no plan";
  }

 private:
  Plan* plan_for(const torch::Tensor& raw_latent) {
    if (raw_latent.dim() != 4 || raw_latent.size(0) != 1 || raw_latent.size(1) != channels_)
      throw std::invalid_argument("FastDecoder: latents must be [1, C, h, w]");
    return plan(raw_latent.size(2), raw_latent.size(3));
  }

  std::vector<Layer> layers_;
  int64_t channels_;
  mutable std::mutex mutex_;
  dnnl::stream stream_;
  std::map<std::array<int64_t, 3>, std::unique_ptr<Plan>> plans_;  // (h, w, threads)
  std::set<std::array<int64_t, 3>> refused_;
};

}  // namespace

std::shared_ptr<FastDecoder> FastDecoder::create(AutoencoderImpl& ae, int64_t h, int64_t w) {
  try {
    auto layers = read_layers(ae);
    if (layers.empty()) return nullptr;
    auto decoder = std::make_shared<DnnlDecoder>(std::move(layers), ae.config().latent_channels);
    if (decoder->plan(h, w) == nullptr) return nullptr;
      // Beside a busy program the engine drops to one thread (load_adaptive.h): that plan is
      // built now too, not in the middle of the run that first needs it. The thread count is
      // OpenMP's per-thread setting, so this changes nothing for other threads.
#ifdef DFS_HAVE_OPENMP
    if (const int threads = omp_get_max_threads(); threads > 1) {
      omp_set_num_threads(1);
      decoder->plan(h, w);
      omp_set_num_threads(threads);
    }
#endif
    return decoder;
  } catch (const std::exception&) {
    return nullptr;  // oneDNN refused a primitive: LibTorch decodes
  }
}

}  // namespace dfs::diffusion::fast

#else  // no oneDNN headers at build time

namespace dfs::diffusion::fast {
std::shared_ptr<FastDecoder> FastDecoder::create(AutoencoderImpl&, int64_t, int64_t) {
  return nullptr;
}
}  // namespace dfs::diffusion::fast

#endif
