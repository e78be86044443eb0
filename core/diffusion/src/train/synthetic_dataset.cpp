// Synthetic moving objects: a cheap, file-free dataset with known dynamics (constant velocity,
// bounces). A model that learned anything temporal beats copy-last-frame on it.
#include <algorithm>
#include <cmath>
#include <random>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/dataset.h"

namespace dfs::diffusion::train {

namespace {

enum class Shape { Disc, Square, Ring, Diamond };

struct MovingObject {
  Shape shape;
  double x, y;    // centre, pixels
  double vx, vy;  // pixels per frame
  double radius;  // pixels
  uint8_t rgb[3];
};

// Coverage of pixel centre (px, py) by the object, 0 or 1.
bool covers(const MovingObject& o, double px, double py) {
  const double dx = px - o.x, dy = py - o.y;
  switch (o.shape) {
    case Shape::Disc:
      return dx * dx + dy * dy <= o.radius * o.radius;
    case Shape::Square:
      return std::abs(dx) <= o.radius * 0.85 && std::abs(dy) <= o.radius * 0.85;
    case Shape::Ring: {
      const double d2 = dx * dx + dy * dy;
      return d2 <= o.radius * o.radius && d2 >= 0.3 * o.radius * o.radius;
    }
    case Shape::Diamond:
      return std::abs(dx) + std::abs(dy) <= o.radius * 1.1;
  }
  return false;
}

// Reflects a position that left [lo, hi] back inside and reverses its velocity (an elastic
// bounce off a border).
void bounce(double& position, double& velocity, double lo, double hi) {
  if (position < lo) {
    position = 2 * lo - position;
    velocity = -velocity;
  }
  if (position > hi) {
    position = 2 * hi - position;
    velocity = -velocity;
  }
}

}  // namespace

VideoDataset make_synthetic_dataset(const SyntheticSettings& s) {
  if (s.clips < 1 || s.frames < 2 || s.width < 8 || s.height < 8)
    throw Error("synthetic dataset: need clips >= 1, frames >= 2 and a size of at least 8x8");
  if (s.min_objects < 1 || s.max_objects < s.min_objects)
    throw Error("synthetic dataset: need 1 <= min_objects <= max_objects");
  if (s.min_speed < 0 || s.max_speed < s.min_speed)
    throw Error("synthetic dataset: need 0 <= min_speed <= max_speed");
  std::mt19937_64 rng(s.seed);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  auto uniform = [&](double a, double b) { return a + (b - a) * u01(rng); };

  VideoDataset ds;
  const int w = s.width, h = s.height;
  for (int clip = 0; clip < s.clips; ++clip) {
    // Background: a dark two-colour vertical gradient, different per clip.
    double top[3], bottom[3];
    for (int c = 0; c < 3; ++c) {
      top[c] = uniform(10, 90);
      bottom[c] = uniform(10, 90);
    }
    const int n =
        s.min_objects +
        static_cast<int>(rng() % static_cast<uint64_t>(s.max_objects - s.min_objects + 1));
    std::vector<MovingObject> objects;
    for (int i = 0; i < n; ++i) {
      MovingObject o{};
      o.shape = static_cast<Shape>(rng() % 4);
      o.radius = uniform(0.12, 0.22) * std::min(w, h);
      o.x = uniform(o.radius, w - o.radius);
      o.y = uniform(o.radius, h - o.radius);
      const double speed = uniform(s.min_speed, s.max_speed);
      const double angle = uniform(0, 2 * M_PI);
      o.vx = speed * std::cos(angle);
      o.vy = speed * std::sin(angle);
      for (auto& c : o.rgb) c = static_cast<uint8_t>(uniform(120, 255));
      objects.push_back(o);
    }
    auto frames = torch::empty({s.frames, h, w, 3}, torch::kUInt8);
    auto* p = frames.data_ptr<uint8_t>();
    for (int t = 0; t < s.frames; ++t) {
      for (int y = 0; y < h; ++y) {
        const double a = static_cast<double>(y) / (h - 1);
        for (int x = 0; x < w; ++x) {
          uint8_t* px = p + ((static_cast<int64_t>(t) * h + y) * w + x) * 3;
          for (int c = 0; c < 3; ++c)
            px[c] = static_cast<uint8_t>(top[c] * (1 - a) + bottom[c] * a);
          for (const auto& o : objects)  // later objects are drawn on top
            if (covers(o, x + 0.5, y + 0.5)) std::copy(o.rgb, o.rgb + 3, px);
        }
      }
      for (auto& o : objects) {  // constant velocity, elastic bounce off the borders
        o.x += o.vx;
        o.y += o.vy;
        bounce(o.x, o.vx, o.radius, w - o.radius);
        bounce(o.y, o.vy, o.radius, h - o.radius);
      }
    }
    append_clip(ds, "synth" + std::to_string(clip), "synthetic:seed=" + std::to_string(s.seed),
                frames, s.held_out_fraction);
  }
  ds.provenance = {{"generator", "moving-objects"},
                   {"seed", s.seed},
                   {"clips", s.clips},
                   {"frames", s.frames},
                   {"width", s.width},
                   {"height", s.height},
                   {"held_out_fraction", s.held_out_fraction}};
  return ds;
}

}  // namespace dfs::diffusion::train
