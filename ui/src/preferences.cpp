// preferences.cpp — see dfs/ui/preferences.h.
#include "dfs/ui/preferences.h"

#include <QSettings>
#include <QThread>
#include <algorithm>
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/limits.h"

namespace dfs::ui {
namespace {

constexpr const char* kGroup = "preferences";

// The formats a user can pick as the default (PngFrame exports one frame: not a default).
bool is_default_format(dfs::ExportFormat f) {
  return f == dfs::ExportFormat::Mp4 || f == dfs::ExportFormat::Mkv ||
         f == dfs::ExportFormat::WebM || f == dfs::ExportFormat::Gif ||
         f == dfs::ExportFormat::PngSequence;
}

// Reads an integer; absent -> keeps `out`; unreadable -> keeps `out` and says so.
void read_int(QSettings& s, const char* key, const QString& what, int& out, QStringList& msgs) {
  if (!s.contains(key)) return;
  bool ok = false;
  const int v = s.value(key).toString().toInt(&ok);
  if (!ok)
    msgs << QObject::tr("Preference '%1' (%2) is not a whole number (stored: '%3'); using %4.")
                .arg(what, key, s.value(key).toString())
                .arg(out);
  else
    out = v;
}

void read_double(QSettings& s, const char* key, const QString& what, double& out,
                 QStringList& msgs) {
  if (!s.contains(key)) return;
  bool ok = false;
  const double v = s.value(key).toString().toDouble(&ok);
  if (!ok)
    msgs << QObject::tr("Preference '%1' (%2) is not a number (stored: '%3'); using %4.")
                .arg(what, key, s.value(key).toString())
                .arg(out);
  else
    out = v;
}

}  // namespace

QStringList Preferences::problems() const {
  QStringList out;
  if (threads < 0 || threads > kMaxThreads)
    out << QObject::tr("Threads must be 0 (automatic) to %1 (got %2).")
               .arg(kMaxThreads)
               .arg(threads);
  if (!available_devices().contains(device))
    out << QObject::tr("Device must be one of %1 (got '%2').")
               .arg(available_devices().join(", "), device);
  if (!is_default_format(export_format))
    out << QObject::tr(
               "Default export format must be mp4, mkv, webm, gif or png_sequence (got "
               "'%1').")
               .arg(QString::fromUtf8(dfs::to_string(export_format)));
  if (autosave_seconds != 0 &&
      (autosave_seconds < kMinAutosaveSeconds || autosave_seconds > kMaxAutosaveSeconds))
    out << QObject::tr("Autosave interval must be 0 (off) or %1 to %2 seconds (got %3).")
               .arg(kMinAutosaveSeconds)
               .arg(kMaxAutosaveSeconds)
               .arg(autosave_seconds);
  for (const auto& [value, name] : {std::pair{stabilization_user, "pinned frames"},
                                    std::pair{stabilization_generated, "generated frames"}}) {
    const std::string p = limits::problem(limits::kStabilization, value,
                                          std::string("Stabilisation level of ") + name);
    if (!p.empty()) out << QString::fromStdString(p) + ".";
  }
  return out;
}

QStringList Preferences::load(QSettings& s) {
  QStringList msgs;
  const Preferences defaults;
  Preferences read = defaults;
  s.beginGroup(kGroup);
  read_int(s, "threads", QObject::tr("Threads"), read.threads, msgs);
  if (s.contains("device")) read.device = s.value("device").toString();
  if (s.contains("export_folder")) read.export_folder = s.value("export_folder").toString();
  if (s.contains("export_format")) {
    const QString name = s.value("export_format").toString();
    const auto f = enum_from_name(kExportFormatNames, name.toStdString());
    if (f && is_default_format(*f))
      read.export_format = *f;
    else
      msgs << QObject::tr(
                  "Preference 'Default export format' (export_format) is '%1', not one of "
                  "mp4, mkv, webm, gif, png_sequence; using mp4.")
                  .arg(name);
  }
  read_int(s, "autosave_seconds", QObject::tr("Autosave interval"), read.autosave_seconds, msgs);
  read_double(s, "stabilization_user", QObject::tr("Stabilisation of pinned frames"),
              read.stabilization_user, msgs);
  read_double(s, "stabilization_generated", QObject::tr("Stabilisation of generated frames"),
              read.stabilization_generated, msgs);
  s.endGroup();

  // Each value out of range falls back to its default alone; the rest are kept.
  auto fall_back = [&](auto Preferences::*field) {
    Preferences one = defaults;
    one.*field = read.*field;
    const QStringList p = one.problems();
    if (p.isEmpty()) return;
    for (const QString& m : p) msgs << QObject::tr("%1 Using the default.").arg(m);
    read.*field = defaults.*field;
  };
  fall_back(&Preferences::threads);
  fall_back(&Preferences::device);
  fall_back(&Preferences::export_format);
  fall_back(&Preferences::autosave_seconds);
  fall_back(&Preferences::stabilization_user);
  fall_back(&Preferences::stabilization_generated);
  *this = read;
  return msgs;
}

void Preferences::save(QSettings& s) const {
  s.beginGroup(kGroup);
  s.setValue("threads", threads);
  s.setValue("device", device);
  s.setValue("export_folder", export_folder);
  s.setValue("export_format", QString::fromUtf8(dfs::to_string(export_format)));
  s.setValue("autosave_seconds", autosave_seconds);
  s.setValue("stabilization_user", stabilization_user);
  s.setValue("stabilization_generated", stabilization_generated);
  s.endGroup();
}

QStringList available_devices() {
  QStringList out = {"auto", "cpu"};
  if (diffusion::runtime_info().cuda_available) out << "cuda";
  return out;
}

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  if (qEnvironmentVariableIsSet("DFS_THREADS")) {
    bool ok = false;
    const int n = qEnvironmentVariableIntValue("DFS_THREADS", &ok);
    if (ok && n > 0) return n;
  }
  return std::max(1, QThread::idealThreadCount() - 1);
}

QString export_extension(dfs::ExportFormat format) {
  switch (format) {
    case dfs::ExportFormat::Mp4:
      return ".mp4";
    case dfs::ExportFormat::Mkv:
      return ".mkv";
    case dfs::ExportFormat::WebM:
      return ".webm";
    case dfs::ExportFormat::Gif:
      return ".gif";
    case dfs::ExportFormat::PngFrame:
      return ".png";
    case dfs::ExportFormat::PngSequence:
    case dfs::ExportFormat::Auto:
      break;
  }
  return {};
}

}  // namespace dfs::ui
