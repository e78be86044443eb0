// recovery.cpp — see recovery.h.
#include "recovery.h"

#include <unistd.h>

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStandardPaths>
#include <algorithm>

#include "dfs/project/document.h"

namespace dfs::ui::recovery {
namespace {

constexpr const char* kRecordFormat = "dfstudio-recovery";
constexpr int kRecordVersion = 1;

// The kernel's short name of a process ("" when there is no such process).
QString process_name(qint64 pid) {
  QFile file(QStringLiteral("/proc/%1/comm").arg(pid));
  if (!file.open(QIODevice::ReadOnly)) return {};
  return QString::fromUtf8(file.readAll()).trimmed();
}

}  // namespace

QString directory() {
  const QString dir =
      QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/recovery";
  QDir().mkpath(dir);
  return dir;
}

QString own_record_path() {
  return directory() + QStringLiteral("/session-%1.json").arg(QCoreApplication::applicationPid());
}

QString own_untitled_autosave_path() {
  return directory() +
         QStringLiteral("/untitled-%1.dfsproj.autosave").arg(QCoreApplication::applicationPid());
}

QString frames_dir_for(const QString& autosave_path) {
  return autosave_path + "_frames";
}

void write_record(const Session& s) {
  QJsonObject o;
  o["format"] = kRecordFormat;
  o["format_version"] = kRecordVersion;
  o["pid"] = s.pid;
  o["project_path"] = s.project_path;
  o["autosave_path"] = s.autosave_path;
  o["saved_utc"] = s.saved_utc.toUTC().toString(Qt::ISODateWithMs);
  o["edits"] = s.edits;
  o["clip"] = s.clip_name;
  o["frames"] = s.frames;
  o["generated"] = s.generated;
  project::write_file_atomically(s.record_path.toStdString(),
                                 QJsonDocument(o).toJson(QJsonDocument::Indented).toStdString());
}

bool is_running_studio(qint64 pid) {
  if (pid <= 0) return false;
  if (pid == QCoreApplication::applicationPid()) return true;
  const QString name = process_name(pid);
  return !name.isEmpty() && name == process_name(QCoreApplication::applicationPid());
}

QList<Entry> read_records() {
  QList<Entry> out;
  const QDir dir(directory());
  const qint64 own_pid = QCoreApplication::applicationPid();
  for (const QFileInfo& info :
       dir.entryInfoList({"session-*.json"}, QDir::Files, QDir::Name)) {
    QFile file(info.absoluteFilePath());
    if (!file.open(QIODevice::ReadOnly) || file.size() > (1 << 20)) continue;
    const QJsonObject o = QJsonDocument::fromJson(file.readAll()).object();
    if (o.value("format").toString() != kRecordFormat) continue;
    Entry e;
    Session& s = e.session;
    s.record_path = info.absoluteFilePath();
    s.pid = static_cast<qint64>(o.value("pid").toDouble());
    s.project_path = o.value("project_path").toString();
    s.autosave_path = o.value("autosave_path").toString();
    s.saved_utc = QDateTime::fromString(o.value("saved_utc").toString(), Qt::ISODateWithMs);
    s.saved_utc.setTimeSpec(Qt::UTC);
    s.edits = o.value("edits").toInt();
    s.clip_name = o.value("clip").toString();
    s.frames = o.value("frames").toInt();
    s.generated = o.value("generated").toInt();
    if (s.autosave_path.isEmpty()) continue;
    e.own = s.pid == own_pid;
    e.alive = is_running_studio(s.pid);
    out.push_back(e);
  }
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.session.saved_utc > b.session.saved_utc;
  });
  return out;
}

void remove_session_files(const Session& s, bool keep_autosave) {
  if (!keep_autosave && !s.autosave_path.isEmpty()) {
    QFile::remove(s.autosave_path);
    QDir(frames_dir_for(s.autosave_path)).removeRecursively();
  }
  if (!s.record_path.isEmpty()) QFile::remove(s.record_path);
}

}  // namespace dfs::ui::recovery
