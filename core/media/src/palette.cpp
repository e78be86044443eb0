// palette.cpp — median-cut quantisation with Floyd–Steinberg dithering (see palette.h).
#include "palette.h"

#include <algorithm>
#include <unordered_map>

namespace dfs::media {

namespace {

constexpr int kBins = 32 * 32 * 32;  // 5 bits per channel

inline int bin_of(int r, int g, int b) {
  return ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3);
}

struct Box {
  std::vector<int> bins;  // histogram bins in the box
  long long weight = 0;   // pixels
};

// Extent of a box along channel c (0 = R, 1 = G, 2 = B), in bin units.
int channel_of(int bin, int c) {
  return (bin >> (10 - 5 * c)) & 31;
}

}  // namespace

IndexedImage quantize(const Frame& frame, bool dither) {
  IndexedImage out;
  out.width = frame.width;
  out.height = frame.height;
  const size_t n = static_cast<size_t>(frame.width) * frame.height;
  out.indices.resize(n);

  // Exact palette when the frame has few colours.
  {
    std::unordered_map<std::uint32_t, std::uint8_t> exact;
    bool fits = true;
    for (size_t i = 0; i < n && fits; ++i) {
      const std::uint8_t* p = &frame.rgb[3 * i];
      const std::uint32_t c = (p[0] << 16) | (p[1] << 8) | p[2];
      auto it = exact.find(c);
      if (it == exact.end()) {
        if (exact.size() == 256) {
          fits = false;
          break;
        }
        const auto index = static_cast<std::uint8_t>(exact.size());
        exact.emplace(c, index);
        out.palette[index] = 0xFF000000u | c;
        out.indices[i] = index;
      } else {
        out.indices[i] = it->second;
      }
    }
    if (fits) {
      out.colors = static_cast<int>(exact.size());
      out.exact = true;
      return out;
    }
  }

  // Histogram with per-bin colour sums (for the box means).
  std::vector<long long> count(kBins, 0), sum_r(kBins, 0), sum_g(kBins, 0), sum_b(kBins, 0);
  for (size_t i = 0; i < n; ++i) {
    const std::uint8_t* p = &frame.rgb[3 * i];
    const int b = bin_of(p[0], p[1], p[2]);
    ++count[b];
    sum_r[b] += p[0];
    sum_g[b] += p[1];
    sum_b[b] += p[2];
  }
  std::vector<Box> boxes(1);
  for (int b = 0; b < kBins; ++b)
    if (count[b]) {
      boxes[0].bins.push_back(b);
      boxes[0].weight += count[b];
    }

  // Split the heaviest splittable box at the weighted median of its longest channel.
  while (boxes.size() < 256) {
    int best = -1;
    int best_channel = 0;
    double best_score = 0;
    for (size_t i = 0; i < boxes.size(); ++i) {
      if (boxes[i].bins.size() < 2) continue;
      int lo[3] = {31, 31, 31}, hi[3] = {0, 0, 0};
      for (int b : boxes[i].bins)
        for (int c = 0; c < 3; ++c) {
          lo[c] = std::min(lo[c], channel_of(b, c));
          hi[c] = std::max(hi[c], channel_of(b, c));
        }
      int channel = 0;
      for (int c = 1; c < 3; ++c)
        if (hi[c] - lo[c] > hi[channel] - lo[channel]) channel = c;
      const double score = static_cast<double>(boxes[i].weight) * (hi[channel] - lo[channel] + 1);
      if (score > best_score) {
        best_score = score;
        best = static_cast<int>(i);
        best_channel = channel;
      }
    }
    if (best < 0) break;
    Box& box = boxes[best];
    std::sort(box.bins.begin(), box.bins.end(), [&](int a, int b) {
      return channel_of(a, best_channel) < channel_of(b, best_channel);
    });
    long long half = 0;
    size_t cut = 0;
    while (cut < box.bins.size() - 1 && half + count[box.bins[cut]] <= box.weight / 2)
      half += count[box.bins[cut++]];
    if (cut == 0) half += count[box.bins[cut++]];
    Box upper;
    upper.bins.assign(box.bins.begin() + cut, box.bins.end());
    upper.weight = box.weight - half;
    box.bins.resize(cut);
    box.weight = half;
    boxes.push_back(std::move(upper));
  }

  int palette_rgb[256][3];
  out.colors = static_cast<int>(boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    long long r = 0, g = 0, b = 0, w = 0;
    for (int bin : boxes[i].bins) {
      r += sum_r[bin];
      g += sum_g[bin];
      b += sum_b[bin];
      w += count[bin];
    }
    w = std::max(1LL, w);
    palette_rgb[i][0] = static_cast<int>((r + w / 2) / w);
    palette_rgb[i][1] = static_cast<int>((g + w / 2) / w);
    palette_rgb[i][2] = static_cast<int>((b + w / 2) / w);
    out.palette[i] =
        0xFF000000u | (palette_rgb[i][0] << 16) | (palette_rgb[i][1] << 8) | palette_rgb[i][2];
  }

  // Nearest palette entry per bin (centre of the bin), computed on demand.
  std::vector<std::int16_t> nearest(kBins, -1);
  auto lookup = [&](int r, int g, int b) -> int {
    const int bin = bin_of(r, g, b);
    if (nearest[bin] >= 0) return nearest[bin];
    const int cr = (r & ~7) + 4, cg = (g & ~7) + 4, cb = (b & ~7) + 4;
    int best = 0, best_d = 1 << 30;
    for (int i = 0; i < out.colors; ++i) {
      const int dr = cr - palette_rgb[i][0], dg = cg - palette_rgb[i][1],
                db = cb - palette_rgb[i][2];
      const int d = 2 * dr * dr + 4 * dg * dg + 3 * db * db;  // rough perceptual weights
      if (d < best_d) {
        best_d = d;
        best = i;
      }
    }
    nearest[bin] = static_cast<std::int16_t>(best);
    return best;
  };

  const int w = frame.width, h = frame.height;
  if (!dither) {
    for (size_t i = 0; i < n; ++i) {
      const std::uint8_t* p = &frame.rgb[3 * i];
      out.indices[i] = static_cast<std::uint8_t>(lookup(p[0], p[1], p[2]));
    }
    return out;
  }
  // Floyd–Steinberg: two rows of accumulated error (x16 fixed point), per channel.
  std::vector<int> err_cur(3 * (w + 2), 0), err_next(3 * (w + 2), 0);
  for (int y = 0; y < h; ++y) {
    std::fill(err_next.begin(), err_next.end(), 0);
    const std::uint8_t* row = frame.row(y);
    for (int x = 0; x < w; ++x) {
      int v[3];
      for (int c = 0; c < 3; ++c)
        v[c] = std::clamp(row[3 * x + c] + err_cur[3 * (x + 1) + c] / 16, 0, 255);
      const int idx = lookup(v[0], v[1], v[2]);
      out.indices[static_cast<size_t>(y) * w + x] = static_cast<std::uint8_t>(idx);
      for (int c = 0; c < 3; ++c) {
        const int e = v[c] - palette_rgb[idx][c];
        err_cur[3 * (x + 2) + c] += e * 7;
        err_next[3 * x + c] += e * 3;
        err_next[3 * (x + 1) + c] += e * 5;
        err_next[3 * (x + 2) + c] += e * 1;
      }
    }
    std::swap(err_cur, err_next);
  }
  return out;
}

}  // namespace dfs::media
