// FrameCache: the first block's per-frame state, looked up by the frame's exact input bytes.
#include "frame_cache.h"

#include <algorithm>
#include <cstring>

#include "dfs/diffusion/denoiser.h"

namespace dfs::diffusion {

namespace {

// Copies a contiguous float tensor's bytes into `to` (allocated on first use, same shape).
void copy_into(torch::Tensor& to, const torch::Tensor& from) {
  if (!to.defined() || to.sizes() != from.sizes()) to = torch::empty_like(from);
  std::memcpy(to.data_ptr(), from.data_ptr(), from.numel() * sizeof(float));
}

}  // namespace

int FrameCache::find(const torch::Tensor& x, float level, float position) {
  const size_t bytes = x.numel() * sizeof(float);
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (e.level != level || e.position != position || e.x.numel() != x.numel()) continue;
    if (std::memcmp(e.x.data_ptr(), x.data_ptr(), bytes) != 0) continue;
    e.used = ++clock_;
    ++hits_;
    return static_cast<int>(i);
  }
  ++misses_;
  return -1;
}

int FrameCache::put(const torch::Tensor& x, float level, float position, const torch::Tensor& h,
                    const torch::Tensor& qkv) {
  size_t slot = entries_.size();
  if (entries_.size() >= capacity_) {
    slot = static_cast<size_t>(
        std::min_element(entries_.begin(), entries_.end(),
                         [](const Entry& a, const Entry& b) { return a.used < b.used; }) -
        entries_.begin());
  } else {
    entries_.emplace_back();
  }
  Entry& e = entries_[slot];
  copy_into(e.x, x);
  copy_into(e.h, h);
  copy_into(e.qkv, qkv);
  e.level = level;
  e.position = position;
  e.used = ++clock_;
  return static_cast<int>(slot);
}

void FrameCache::fit(int64_t frames_per_call) {
  capacity_ = std::max(capacity_, static_cast<size_t>(2 * frames_per_call));
}

void FrameCache::clear() {
  entries_.clear();
  clock_ = 0;
}

torch::Tensor DenoiserImpl::first_per_frame(const torch::Tensor& frames_in,
                                            const torch::Tensor& levels_in,
                                            const torch::Tensor& positions_in,
                                            const torch::Tensor& rope_cos,
                                            const torch::Tensor& rope_sin, const torch::Tensor& mod,
                                            const std::vector<int64_t>& outputs, FrameCache& cache,
                                            torch::Tensor& qkv) {
  const auto& c = config_;
  const int64_t b = levels_in.size(0), t = levels_in.size(1), n = b * t;
  const int64_t tokens = static_cast<int64_t>(c.width / c.patch) * (c.height / c.patch);
  const int64_t d = c.dim;
  const auto frames = frames_in.contiguous();
  const auto levels = levels_in.to(torch::kFloat32).contiguous();
  const auto positions = positions_in.to(torch::kFloat32).contiguous();
  const float* level = levels.data_ptr<float>();
  const float* position = positions.data_ptr<float>();
  cache.fit(n);

  std::vector<int> entry(n);
  std::vector<int64_t> missed;
  for (int64_t i = 0; i < n; ++i) {
    entry[i] = cache.find(frames[i], level[i], position[i % t]);
    if (entry[i] < 0) missed.push_back(i);
  }
  // A frame whose prediction is used moves in this row, so its next input differs: only the
  // others are kept (all of them when every prediction is used, as with live previews).
  std::vector<bool> moves(t, false);
  for (const int64_t o : outputs) moves[o] = true;
  const auto keep = [&](int64_t i, const torch::Tensor& h_rows, const torch::Tensor& qkv_rows,
                        int64_t row) {
    if (!moves[i % t])
      cache.put(frames[i], level[i], position[i % t], h_rows.view({-1, tokens, d})[row],
                qkv_rows.view({-1, tokens, 3 * d})[row]);
  };
  const auto& block = blocks[0]->as<SpaceTimeBlockImpl>();
  const auto missed_count = static_cast<int64_t>(missed.size());
  if (3 * (n - missed_count) < n) {
    // Under a third seen before (a full-sequence row moves every generated frame): computing
    // every frame costs less than gathering the rest and assembling (measured).
    auto h = block->fast_per_frame(embed(frames, true).reshape({b, t, tokens, d}), mod, rope_cos,
                                   rope_sin, qkv);
    for (const int64_t i : missed) keep(i, h, qkv, i);
    return h;
  }

  torch::Tensor h_new, qkv_new;
  if (missed_count > 0) {
    const auto index = torch::tensor(missed, torch::kLong);
    std::vector<int64_t> time(missed.size());
    for (size_t k = 0; k < missed.size(); ++k) time[k] = missed[k] % t;
    const auto time_index = torch::tensor(time, torch::kLong);
    const auto tokens_in =
        embed(frames.index_select(0, index), true).reshape({1, missed_count, tokens, d});
    const auto mod_missed = mod.reshape({n, -1}).index_select(0, index).view({1, missed_count, -1});
    h_new = block->fast_per_frame(
        tokens_in, mod_missed, rope_cos.defined() ? rope_cos.index_select(0, time_index) : rope_cos,
        rope_sin.defined() ? rope_sin.index_select(0, time_index) : rope_sin, qkv_new);
    h_new = h_new.contiguous();
    qkv_new = qkv_new.contiguous();
  }

  // Every frame's state in call order, then the new ones kept (after the copies: keeping may
  // evict an entry this call read).
  auto h = torch::empty({b, t, tokens, d}, frames.options());
  qkv = torch::empty({b, t, tokens, 3 * d}, frames.options());
  const int64_t h_size = tokens * d, qkv_size = tokens * 3 * d;
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* from_h =
        entry[i] >= 0 ? cache.h(entry[i]).data_ptr<float>() : h_new.data_ptr<float>() + k * h_size;
    const float* from_qkv = entry[i] >= 0 ? cache.qkv(entry[i]).data_ptr<float>()
                                          : qkv_new.data_ptr<float>() + k * qkv_size;
    if (entry[i] < 0) ++k;
    std::memcpy(h.data_ptr<float>() + i * h_size, from_h, h_size * sizeof(float));
    std::memcpy(qkv.data_ptr<float>() + i * qkv_size, from_qkv, qkv_size * sizeof(float));
  }
  for (int64_t j = 0; j < missed_count; ++j) keep(missed[j], h_new, qkv_new, j);
  return h;
}

}  // namespace dfs::diffusion
