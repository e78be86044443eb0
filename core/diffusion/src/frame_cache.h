// frame_cache.h — the first block's per-frame work, kept across the forwards of a window
// (engine-internal, torch).
//
// Up to its temporal attention, the first space-time block sees one frame at a time: the stem,
// the position embedding, the spatial attention and the temporal attention's q/k/v (rotated by
// the frame's time position) depend on that frame's input, its noise level and its position
// only. Across the rows of a scheduling matrix most frames do not change: the known frames
// (fed with the window's fixed stabilisation noise), the frames still waiting at full noise
// and the frames already finished (a pyramid row moves about a third of its frames). The fast
// forward (DenoiserImpl::forward_fast) looks each frame up here and computes only the others.
// A hit needs the same bytes of input and the same level and position, so a hit gives what
// the computation would have given, up to the float summation order of a smaller batch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace dfs::diffusion {

class FrameCache {
 public:
  // The entry of this frame (x [C, H, W] float32, contiguous), or -1.
  int find(const torch::Tensor& x, float level, float position);
  // Keeps a frame's first-block state (h [L, d] after the spatial attention, qkv [L, 3d] of the
  // temporal attention); evicts the least recently used entry beyond the capacity. Returns its
  // entry.
  int put(const torch::Tensor& x, float level, float position, const torch::Tensor& h,
          const torch::Tensor& qkv);
  const torch::Tensor& h(int entry) const { return entries_[entry].h; }
  const torch::Tensor& qkv(int entry) const { return entries_[entry].qkv; }

  // At least this many entries (the frames of one call, every batch row); the cache holds two
  // calls' worth, the previous row's frames and this row's new ones.
  void fit(int64_t frames_per_call);
  void clear();
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    torch::Tensor x, h, qkv;
    float level = 0, position = 0;
    uint64_t used = 0;  // clock of the last find/put
  };
  std::vector<Entry> entries_;
  size_t capacity_ = 32;
  uint64_t clock_ = 0;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace dfs::diffusion
