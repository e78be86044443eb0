// dfs/clock_text.h — durations and timestamps as people read them (header-only).
#pragma once

#include <cstdio>
#include <ctime>
#include <string>

namespace dfs {

// "m:ss" or "h:mm:ss" for progress lines and logs; `unknown` when seconds < 0 (no estimate).
inline std::string format_clock(double seconds, const char* unknown = "?") {
  if (seconds < 0) return unknown;
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// UTC now as ISO 8601 ("2026-12-05T23:23:19Z"), for provenance records.
inline std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace dfs
