// frame_span.h — an inclusive range of timeline positions, first > last meaning none: the
// selection the filmstrip and the noise curve share, the export in/out points.
#pragma once

#include <algorithm>

namespace dfs::ui {

struct FrameSpan {
  int first = 0;
  int last = -1;

  bool empty() const { return first > last; }
  // What a drag from `anchor` to `position` covers, whichever way it went.
  static FrameSpan between(int anchor, int position) {
    return {std::min(anchor, position), std::max(anchor, position)};
  }
};

}  // namespace dfs::ui
