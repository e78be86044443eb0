// model_lookup.cpp — finding the shipped demo model and loading a model file, with the random
// "demo" model as the announced fallback (find_demo_model, load_model_or_demo).
#include "dfs/project/generation.h"

#include <cstdlib>
#include <filesystem>
#include <string>

#include "errors.h"

namespace dfs::project {

namespace fs = std::filesystem;
using detail::translate_errors;

namespace {
constexpr const char* kDemoModelName = "demo.safetensors";

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}
}  // namespace

std::string find_demo_model(const std::string& executable_path) {
  if (const char* env = std::getenv("DFS_MODEL"); env && *env && is_file(env)) return env;
  std::error_code ec;
  fs::path exe = executable_path;
  if (exe.empty() || !exe.has_parent_path()) exe = fs::read_symlink("/proc/self/exe", ec);
  if (!exe.empty()) {
    const fs::path dir = fs::absolute(exe, ec).parent_path();
    for (const fs::path& candidate :
         {dir / ".." / ".." / "models" / kDemoModelName,
          dir / ".." / "share" / "dfstudio" / "models" / kDemoModelName})
      // Normalised first: "bin/.." must not need "bin" to exist.
      if (is_file(candidate.lexically_normal())) return candidate.lexically_normal().string();
  }
  const fs::path local = fs::path("models") / kDemoModelName;
  if (is_file(local)) return local.string();
  return "";
}

diffusion::Model load_model_or_demo(const std::string& path, const std::string& executable_path,
                                    std::string* warning, const std::string& device) {
  if (warning) warning->clear();
  std::string chosen = path;
  if (!chosen.empty() && !is_file(chosen)) {
    if (fs::path(chosen).filename() != kDemoModelName)
      throw Error("model file '" + chosen +
                  "' does not exist (give a .safetensors model file, or "
                  "leave --model out to use the shipped demo model)");
    chosen.clear();  // "the demo model" wherever it is installed
  }
  if (chosen.empty()) chosen = find_demo_model(executable_path);
  if (!chosen.empty())
    return translate_errors("cannot load model '" + chosen + "'",
                            [&] { return diffusion::Model::load(chosen, device); });
  if (warning)
    *warning =
        "Untrained demo model: results are noise-like. No model file was found ($DFS_MODEL, "
        "models/demo.safetensors next to the build or install), so a randomly initialised 'demo' "
        "model is in use: the generated frames will look like noise, not like a continuation of "
        "the clip";
  return translate_errors("cannot create the fallback model", [&] {
    return diffusion::Model::random("demo", 0, device == "auto" ? "cpu" : device);
  });
}

}  // namespace dfs::project
