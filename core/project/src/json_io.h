// json_io.h — (private) the JSON shapes of the project's parts, shared by the project file
// (json_io.cpp) and the generation metadata (generation_metadata.cpp), so both spell a field the
// same way and reject a bad value with the same message. Defined in json_io.cpp.
//
// Every reader takes the dotted path of the object it reads ("generation", "timeline") and
// names the full field in its errors: "timeline.noise[3] must be a number".
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "dfs/project/document.h"

namespace dfs::project::detail {

using nlohmann::json;

json clip_to_json(const ClipRef& clip);
ClipRef clip_from_json(const json& j, const std::string& where);

json timeline_to_json(const Timeline& t);
Timeline timeline_from_json(const json& j, const std::string& where);

json settings_to_json_object(const GenerationSettings& s);
GenerationSettings settings_from_json_object(const json& j, const std::string& where);

json export_to_json(const ExportSettings& e);
ExportSettings export_from_json(const json& j, const std::string& where);

json results_to_json(const Results& r, int length);
Results results_from_json(const json& j, const std::string& where, int length);

json takes_to_json(const TakesRef& t);
TakesRef takes_from_json(const json& j, const std::string& where);

// Parses text as a JSON object; throws Error("<what>: not valid JSON (...)") otherwise.
json parse_object(const std::string& text, const std::string& what);

// The member `key` of `obj`, or an Error naming it ("<where>.<key> is missing").
inline const nlohmann::json& need_member(const nlohmann::json& obj, const std::string& where,
                                         const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) throw Error(where + "." + key + " is missing");
  return *it;
}

}  // namespace dfs::project::detail
