// Synthetic camera motion, moving cut-outs and lighting drift over still photographs
// (see dataset.h, MotionSettings).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/dataset.h"

namespace dfs::diffusion::train {

namespace {

namespace F = torch::nn::functional;

constexpr double kMaxSourcePerOutput = 1.25;  // source pixels per output pixel after reduction
constexpr int kMinStillSide = 64;

struct Rng {
  std::mt19937_64 gen;
  double uniform(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(gen);
  }
  bool chance(double p) { return uniform(0, 1) < p; }
  size_t index(size_t n) { return static_cast<size_t>(gen() % n); }
};

// float [1, 3, H, W] in [0, 255] from uint8 [H, W, 3], reduced by area so that its longer side
// is at most `max_side` (keeps memory and sampling cost bounded for 5K wallpapers).
torch::Tensor prepare_still(const torch::Tensor& still, int64_t max_side) {
  auto x = still.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);
  const int64_t h = x.size(2), w = x.size(3);
  const double r = static_cast<double>(max_side) / static_cast<double>(std::max(h, w));
  if (r < 1.0)
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{std::max<int64_t>(1, std::llround(h * r)),
                                                         std::max<int64_t>(1, std::llround(w * r))})
                              .mode(torch::kArea));
  return x;
}

// Area-reduce `src` by `factor` (> 1) or return it unchanged.
torch::Tensor reduce(const torch::Tensor& src, double factor) {
  if (factor <= 1.0) return src;
  const int64_t h = std::max<int64_t>(8, std::llround(src.size(2) / factor));
  const int64_t w = std::max<int64_t>(8, std::llround(src.size(3) / factor));
  return F::interpolate(
      src, F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kArea));
}

// A similarity transform from output pixels to source pixels: source = c + s R(theta) (p - o),
// p an output pixel centre, o the output centre.
struct View {
  double cx = 0, cy = 0, scale = 1, angle = 0;
};

// Sampling grid [1, H, W, 2] (normalised, align_corners = false) of `view` into a source of
// size sw x sh, for an output of W x H pixels.
torch::Tensor grid_for(const View& v, int width, int height, int64_t sw, int64_t sh) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto u =
      (torch::arange(width, opts) + 0.5 - width / 2.0).view({1, width}).expand({height, width});
  const auto w =
      (torch::arange(height, opts) + 0.5 - height / 2.0).view({height, 1}).expand({height, width});
  const double c = std::cos(v.angle), s = std::sin(v.angle);
  const auto sx = v.cx + v.scale * (c * u - s * w);
  const auto sy = v.cy + v.scale * (s * u + c * w);
  const auto gx = 2.0 * sx / static_cast<double>(sw) - 1.0;
  const auto gy = 2.0 * sy / static_cast<double>(sh) - 1.0;
  return torch::stack({gx, gy}, -1).unsqueeze(0).to(torch::kFloat32);
}

torch::Tensor sample(const torch::Tensor& src, const torch::Tensor& grid) {
  return F::grid_sample(src, grid,
                        F::GridSampleFuncOptions()
                            .mode(torch::kBilinear)
                            .padding_mode(torch::kBorder)
                            .align_corners(false));
}

// Half extents (source pixels) of the box that holds a rotated view.
std::pair<double, double> half_extent(double scale, double max_angle, int width, int height) {
  const double c = std::cos(max_angle), s = std::sin(max_angle);
  return {scale * (width / 2.0 * c + height / 2.0 * s),
          scale * (width / 2.0 * s + height / 2.0 * c)};
}

double ease(double t, bool eased) {
  return eased ? t * t * (3 - 2 * t) : t;
}

// One moving cut-out layer.
struct Layer {
  torch::Tensor texture;                  // [1, 3, th, tw] float
  double width = 0, height = 0;           // on screen, output pixels
  double x0 = 0, y0 = 0, vx = 0, vy = 0;  // centre at frame 0 and velocity (output px/frame)
  double angle0 = 0, spin = 0;            // radians, radians/frame
  bool ellipse = true;
  double corner = 0.2;  // rounded box: corner radius as a fraction of the smaller side
};

// Alpha [1, 1, H, W] of a layer at frame t, with a 1.5-pixel soft edge, and the texture sample.
std::pair<torch::Tensor, torch::Tensor> render_layer(const Layer& l, int t, int width, int height) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const double cx = l.x0 + l.vx * t, cy = l.y0 + l.vy * t, a = l.angle0 + l.spin * t;
  const auto px = (torch::arange(width, opts) + 0.5).view({1, width}).expand({height, width}) - cx;
  const auto py =
      (torch::arange(height, opts) + 0.5).view({height, 1}).expand({height, width}) - cy;
  const double c = std::cos(a), s = std::sin(a);
  const auto lx = c * px + s * py;  // layer-local coordinates, output pixels
  const auto ly = -s * px + c * py;
  const double hw = l.width / 2, hh = l.height / 2;
  torch::Tensor dist;  // signed distance to the edge in pixels (negative inside)
  if (l.ellipse) {
    const auto r = torch::sqrt((lx / hw).pow(2) + (ly / hh).pow(2));
    dist = (r - 1.0) * std::min(hw, hh);
  } else {
    const double rad = l.corner * std::min(hw, hh);
    const auto qx = (lx.abs() - (hw - rad)).clamp_min(0), qy = (ly.abs() - (hh - rad)).clamp_min(0);
    const auto outside = torch::sqrt(qx * qx + qy * qy);
    const auto inside = torch::max(lx.abs() - (hw - rad), ly.abs() - (hh - rad)).clamp_max(0);
    dist = outside + inside - rad;
  }
  const auto alpha = (0.5 - dist / 1.5).clamp(0, 1).to(torch::kFloat32).unsqueeze(0).unsqueeze(0);
  // Texture coordinates: local position over the layer box -> [-1, 1].
  const auto gx = (lx / hw).to(torch::kFloat32), gy = (ly / hh).to(torch::kFloat32);
  const auto grid = torch::stack({gx, gy}, -1).unsqueeze(0);
  return {alpha, sample(l.texture, grid)};
}

}  // namespace

void append_motion_clips(VideoDataset& dataset, const std::vector<torch::Tensor>& stills_in,
                         const MotionSettings& s) {
  if (s.clips < 1 || s.frames < 2) throw Error("motion clips need clips >= 1 and frames >= 2");
  if (s.width < 16 || s.height < 16) throw Error("motion clips need at least 16x16 pixels");
  if (dataset.frames.defined() && (dataset.width() != s.width || dataset.height() != s.height))
    throw Error("motion clips of " + std::to_string(s.width) + "x" + std::to_string(s.height) +
                " do not match the dataset's " + std::to_string(dataset.width()) + "x" +
                std::to_string(dataset.height()));
  std::vector<torch::Tensor> stills;
  const int64_t max_side = 4 * std::max(s.width, s.height);
  for (const auto& st : stills_in) {
    if (!st.defined() || st.dim() != 3 || st.size(2) != 3 || st.scalar_type() != torch::kUInt8)
      throw Error("stills must be uint8 [H, W, 3]");
    if (st.size(0) >= kMinStillSide && st.size(1) >= kMinStillSide)
      stills.push_back(prepare_still(st, max_side));
  }
  if (stills.empty()) throw Error("no still photograph of at least 64x64 pixels to animate");
  torch::NoGradGuard no_grad;
  const int W = s.width, H = s.height, T = s.frames;
  auto out = torch::empty({static_cast<int64_t>(s.clips) * T, H, W, 3}, torch::kUInt8);
  std::vector<ClipInfo> infos;
  const int64_t first = dataset.frame_count();
  for (int clip = 0; clip < s.clips; ++clip) {
    Rng rng{
        std::mt19937_64(s.seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(clip) * 7919u + 1)};
    const size_t bi = rng.index(stills.size());
    const auto& still = stills[bi];
    const int64_t sh0 = still.size(2), sw0 = still.size(3);

    // Camera: a view covering a fraction of the still, moving from `a` to `b`.
    const bool moving = !rng.chance(s.p_static);
    const double max_angle = moving ? std::min(0.2, s.max_rotation * T) : 0.0;
    // The largest scale (source px per output px) at which a rotated view fits in the still.
    const auto [ex, ey] = half_extent(1.0, max_angle, W, H);
    const double fit_scale = std::min(sw0 / (2 * ex), sh0 / (2 * ey));
    View a, b;
    a.scale = fit_scale * rng.uniform(0.35, 0.95);
    b.scale = a.scale;
    if (moving) {
      const double zoom = rng.uniform(-s.max_zoom, s.max_zoom) * rng.uniform(0, 1);
      b.scale = std::min(fit_scale * 0.98, a.scale * std::pow(1.0 + zoom, T - 1));
      a.angle = rng.uniform(-max_angle, max_angle) / 2;
      b.angle =
          a.angle + rng.uniform(-s.max_rotation, s.max_rotation) * (T - 1) * rng.uniform(0, 1);
      b.angle = std::clamp(b.angle, -max_angle, max_angle);
    }
    // Reduce the still so that no frame samples it more coarsely than kMaxSourcePerOutput.
    const double reduce_by = std::min(a.scale, b.scale) / kMaxSourcePerOutput;
    const auto src = reduce(still, reduce_by);
    const double k = static_cast<double>(src.size(3)) / static_cast<double>(sw0);
    const int64_t sw = src.size(3), sh = src.size(2);
    a.scale *= k, b.scale *= k;
    const auto [ax, ay] = half_extent(a.scale, max_angle, W, H);
    const auto [bx, by] = half_extent(b.scale, max_angle, W, H);
    a.cx = rng.uniform(ax, std::max(ax, sw - ax));
    a.cy = rng.uniform(ay, std::max(ay, sh - ay));
    b.cx = a.cx, b.cy = a.cy;
    if (moving) {
      const double speed = s.max_pan * std::pow(rng.uniform(0, 1), 1.5);  // output px/frame
      const double dir = rng.uniform(0, 2 * M_PI);
      b.cx =
          std::clamp(a.cx + std::cos(dir) * speed * a.scale * (T - 1), bx, std::max(bx, sw - bx));
      b.cy =
          std::clamp(a.cy + std::sin(dir) * speed * a.scale * (T - 1), by, std::max(by, sh - by));
    }
    const bool eased = rng.chance(0.3);
    // Screen velocity of the background (output px/frame), for parallax.
    const double cam_vx = -(b.cx - a.cx) / (a.scale * (T - 1));
    const double cam_vy = -(b.cy - a.cy) / (a.scale * (T - 1));

    // Cut-out layers.
    std::vector<Layer> layers;
    if (rng.chance(s.p_layers)) {
      const int n = 1 + static_cast<int>(rng.index(3));
      for (int i = 0; i < n; ++i) {
        Layer l;
        const auto& tex_still = stills[rng.index(stills.size())];
        l.width = W * rng.uniform(0.12, 0.45);
        l.height = l.width * rng.uniform(0.6, 1.5);
        // A patch of the still about as large as the layer, at a similar pixel density.
        const double tscale = rng.uniform(0.8, 2.0);
        const int64_t tw = std::min<int64_t>(tex_still.size(3), std::llround(l.width * tscale));
        const int64_t th = std::min<int64_t>(tex_still.size(2), std::llround(l.height * tscale));
        const int64_t tx =
            static_cast<int64_t>(rng.index(static_cast<size_t>(tex_still.size(3) - tw + 1)));
        const int64_t ty =
            static_cast<int64_t>(rng.index(static_cast<size_t>(tex_still.size(2) - th + 1)));
        l.texture = tex_still.narrow(2, ty, std::max<int64_t>(2, th))
                        .narrow(3, tx, std::max<int64_t>(2, tw))
                        .contiguous();
        const double speed = s.max_layer_speed * rng.uniform(0.1, 1.0);
        const double dir = rng.uniform(0, 2 * M_PI);
        const double parallax = moving ? rng.uniform(1.1, 2.0) : 0.0;
        l.vx = std::cos(dir) * speed + parallax * cam_vx;
        l.vy = std::sin(dir) * speed + parallax * cam_vy;
        // Start so that the layer is on screen around the middle of the clip.
        const double mid = (T - 1) / 2.0;
        l.x0 = rng.uniform(0.15, 0.85) * W - l.vx * mid;
        l.y0 = rng.uniform(0.15, 0.85) * H - l.vy * mid;
        l.angle0 = rng.uniform(-0.3, 0.3);
        l.spin = rng.chance(0.3) ? rng.uniform(-0.02, 0.02) : 0.0;
        l.ellipse = rng.chance(0.5);
        l.corner = rng.uniform(0.05, 0.4);
        layers.push_back(std::move(l));
      }
    }

    // Lighting: per-channel gain drifting linearly from 1.
    double gain[3] = {0, 0, 0};
    if (rng.chance(s.p_lighting)) {
      const double g = rng.uniform(-0.2, 0.2);
      for (double& c : gain) c = g + rng.uniform(-0.05, 0.05);
    }

    for (int t = 0; t < T; ++t) {
      const double f = ease(static_cast<double>(t) / (T - 1), eased);
      View v;
      v.cx = a.cx + (b.cx - a.cx) * f;
      v.cy = a.cy + (b.cy - a.cy) * f;
      v.scale = a.scale + (b.scale - a.scale) * f;
      v.angle = a.angle + (b.angle - a.angle) * f;
      auto frame = sample(src, grid_for(v, W, H, sw, sh));  // [1, 3, H, W] in [0, 255]
      for (const auto& l : layers) {
        const auto [alpha, tex] = render_layer(l, t, W, H);
        frame = alpha * tex + (1 - alpha) * frame;
      }
      if (gain[0] != 0 || gain[1] != 0 || gain[2] != 0) {
        const double u = static_cast<double>(t) / (T - 1);
        const auto g =
            torch::tensor({1 + gain[0] * u, 1 + gain[1] * u, 1 + gain[2] * u}, torch::kFloat64)
                .to(torch::kFloat32)
                .view({1, 3, 1, 1});
        frame = frame * g;
      }
      out[static_cast<int64_t>(clip) * T + t].copy_(
          frame[0].round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}));
    }
    ClipInfo info;
    char name[32];
    std::snprintf(name, sizeof name, "motion_%04d", clip);
    info.name = name;
    info.source = "synthetic motion: still " + std::to_string(bi) +
                  (moving ? ", moving camera" : ", still camera") + ", " +
                  std::to_string(layers.size()) + " layers" +
                  (gain[0] != 0 ? ", lighting drift" : "");
    info.first = first + static_cast<int64_t>(clip) * T;
    info.length = T;
    info.train_length = T;
    infos.push_back(info);
  }
  for (const auto& c : dataset.clips)
    for (const auto& n : infos)
      if (c.name == n.name) throw Error("the dataset already has a clip named '" + n.name + "'");
  dataset.frames = dataset.frames.defined() ? torch::cat({dataset.frames, out}, 0) : out;
  dataset.clips.insert(dataset.clips.end(), infos.begin(), infos.end());
}

}  // namespace dfs::diffusion::train
