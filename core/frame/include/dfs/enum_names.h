// dfs/enum_names.h — the one idiom for an enum's names: a constexpr table (header-only).
//
// Each enum that is read or written as text has one table of {value, name} entries. The first
// entry of a value is its canonical name (what to_string writes); later entries of the same
// value are accepted aliases. Every layer parses through the same table and throws its own
// error type with enum_choices() in the message, so the accepted names are written once.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dfs {

template <class E>
struct EnumName {
  E value;
  std::string_view name;  // a string literal: null-terminated
};

template <class E, std::size_t N>
using EnumNames = std::array<EnumName<E>, N>;

// The canonical name of `value`, or `fallback` for a value missing from the table.
template <class E, std::size_t N>
constexpr const char* enum_name(const EnumNames<E, N>& table, E value, const char* fallback = "?") {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name.data();
  return fallback;
}

// The value named `text` (canonical name or alias), or nothing.
template <class E, std::size_t N>
constexpr std::optional<E> enum_from_name(const EnumNames<E, N>& table, std::string_view text) {
  for (const auto& entry : table)
    if (entry.name == text) return entry.value;
  return std::nullopt;
}

// The canonical names for a message: "a, b or c".
template <class E, std::size_t N>
std::string enum_choices(const EnumNames<E, N>& table) {
  std::string out;
  std::size_t count = 0, written = 0;
  for (std::size_t i = 0; i < N; ++i)
    if (enum_name(table, table[i].value) == table[i].name.data()) ++count;
  for (std::size_t i = 0; i < N; ++i) {
    if (enum_name(table, table[i].value) != table[i].name.data()) continue;  // an alias
    if (written > 0) out += written + 1 == count ? " or " : ", ";
    out += table[i].name;
    ++written;
  }
  return out;
}

}  // namespace dfs
