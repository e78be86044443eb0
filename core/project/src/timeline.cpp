// timeline.cpp — the timeline: the three layouts (extend, regenerate, fill gap), edits on pins
// and noise levels, and the per-position queries of Results.
#include "dfs/project/document.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "dfs/limits.h"
#include "errors.h"

namespace dfs::project {

namespace fs = std::filesystem;

namespace {

// Limits a user can reach from the UI or a file come from the one table in dfs/limits.h.
constexpr int kMaxTimelineFrames = limits::kTimelineFrames.int_max();

void check_position(const Timeline& t, int position, const char* what) {
  if (position < 0 || position >= t.length())
    throw Error(std::string(what) + ": frame " + std::to_string(position) +
                " is outside the timeline (0.." + std::to_string(t.length() - 1) + ")");
}

void check_level(double level, const char* what) {
  if (!std::isfinite(level) || level < 0.0 || level > 1.0)
    throw Error(std::string(what) + ": noise level must be in [0, 1] (got " +
                detail::fmt_double(level) + ")");
}

}  // namespace

// [SECTION] Timeline layouts and edits ------------------------------------------------------------

Timeline extend_layout(int clip_frames, int n) {
  if (clip_frames < 0) throw Error("extend: the clip has a negative frame count");
  if (n < 1 || n > kMaxTimelineFrames)
    throw Error("extend: frames to add must be in 1.." + std::to_string(kMaxTimelineFrames) +
                " (got " + std::to_string(n) + ")");
  Timeline t;
  t.source_count = clip_frames;
  t.new_frames = n;
  t.noise.assign(static_cast<size_t>(t.length()), 1.0);
  for (int i = 0; i < clip_frames; ++i) {
    t.pins.insert(i);
    t.noise[static_cast<size_t>(i)] = 0.0;
  }
  return t;
}

Timeline regenerate_layout(int clip_frames, int first, int last, double level) {
  if (clip_frames < 1) throw Error("regenerate: the clip has no frames");
  if (first < 0 || last >= clip_frames || first > last)
    throw Error("regenerate: range " + std::to_string(first) + ".." + std::to_string(last) +
                " must lie inside the clip (0.." + std::to_string(clip_frames - 1) + ")");
  check_level(level, "regenerate");
  Timeline t;
  t.source_count = clip_frames;
  t.noise.assign(static_cast<size_t>(clip_frames), 0.0);
  for (int i = 0; i < clip_frames; ++i) {
    if (i >= first && i <= last)
      t.noise[static_cast<size_t>(i)] = level;
    else
      t.pins.insert(i);
  }
  return t;
}

Timeline fill_gap_layout(int clip_frames, int a, int b) {
  if (clip_frames < 1) throw Error("fill gap: the clip has no frames");
  if (a < 0 || b >= clip_frames || a + 1 >= b)
    throw Error("fill gap: pins " + std::to_string(a) + " and " + std::to_string(b) +
                " must lie inside the clip (0.." + std::to_string(clip_frames - 1) +
                ") with at least one frame between them");
  return regenerate_layout(clip_frames, a + 1, b - 1, 1.0);
}

void set_pinned(Timeline& t, int position, bool pinned) {
  check_position(t, position, "pin");
  if (pinned)
    t.pins.insert(position);
  else
    t.pins.erase(position);
}

void set_pinned_range(Timeline& t, int first, int last, bool pinned) {
  if (first > last) std::swap(first, last);
  check_position(t, first, "pin range");
  check_position(t, last, "pin range");
  for (int i = first; i <= last; ++i) set_pinned(t, i, pinned);
}

void pin_all_source(Timeline& t) {
  for (int i = 0; i < t.source_count; ++i) t.pins.insert(i);
}

void clear_pins(Timeline& t) {
  t.pins.clear();
}

void set_noise(Timeline& t, int position, double level) {
  check_position(t, position, "noise");
  check_level(level, "noise");
  t.noise.resize(static_cast<size_t>(t.length()), 1.0);
  t.noise[static_cast<size_t>(position)] = level;
}

void set_noise_range(Timeline& t, int first, int last, double level) {
  if (first > last) std::swap(first, last);
  check_position(t, first, "noise range");
  check_position(t, last, "noise range");
  check_level(level, "noise range");
  t.noise.resize(static_cast<size_t>(t.length()), 1.0);
  for (int i = first; i <= last; ++i) t.noise[static_cast<size_t>(i)] = level;
}

void set_new_frames(Timeline& t, int n) {
  if (n < 0 || n > kMaxTimelineFrames)
    throw Error("new frames must be in 0.." + std::to_string(kMaxTimelineFrames) + " (got " +
                std::to_string(n) + ")");
  t.new_frames = n;
  t.noise.resize(static_cast<size_t>(t.length()), 1.0);
  for (auto it = t.pins.begin(); it != t.pins.end();) {
    if (*it >= t.length())
      it = t.pins.erase(it);
    else
      ++it;
  }
}

// [SECTION] Results -------------------------------------------------------------------------------

bool Results::any() const {
  return std::find(generated.begin(), generated.end(), true) != generated.end();
}

bool Results::has(int position) const {
  return position >= 0 && static_cast<size_t>(position) < generated.size() &&
         generated[static_cast<size_t>(position)];
}

std::string Results::cached_frame_path(int position) const {
  if (cache_dir.empty() || position < 0) return "";
  char name[32];
  std::snprintf(name, sizeof name, "frame_%06d.png", position);
  return (fs::path(cache_dir) / name).string();
}

}  // namespace dfs::project
