// controls_panel.cpp — see controls_panel.h.
#include "controls_panel.h"

#include <cmath>

#include "dfs/limits.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRandomGenerator>
#include <QRegularExpressionValidator>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QStackedWidget>
#include <QVBoxLayout>
#include <algorithm>

#include "widget_row.h"

namespace dfs::ui {

using diffusion::GuidanceMode;
using diffusion::ScheduleShape;
using diffusion::Solver;

void resize_source(project::Timeline& t, int source_first, int source_count) {
  const int old_count = t.source_count;
  const bool all_pinned = old_count > 0 && [&] {
    for (int i = 0; i < old_count; ++i)
      if (!t.pinned(i)) return false;
    return true;
  }();
  std::vector<double> noise;
  noise.reserve(static_cast<size_t>(source_count + t.new_frames));
  std::set<int> pins;
  for (int i = 0; i < source_count; ++i) {
    // Frames that stay keep their level and pin; added ones follow "all source pinned" when
    // the timeline was laid out that way (extend), else they are kept clean and unpinned.
    noise.push_back(i < old_count ? t.noise[static_cast<size_t>(i)] : 0.0);
    if (i < old_count ? t.pinned(i) : all_pinned) pins.insert(i);
  }
  for (int i = 0; i < t.new_frames; ++i) {
    noise.push_back(t.noise[static_cast<size_t>(old_count + i)]);
    if (t.pinned(old_count + i)) pins.insert(source_count + i);
  }
  t.source_first = source_first;
  t.source_count = source_count;
  t.noise = std::move(noise);
  t.pins = std::move(pins);
}

ControlsPanel::ControlsPanel(QWidget* parent) : QWidget(parent) {
  build();
}

void ControlsPanel::emit_edit(const QString& label, const ProjectEdit& change,
                              const QString& merge_key) {
  emit edit_requested(label, change, merge_key);
}

namespace {

QSpinBox* spin(int lo, int hi, const QString& tip) {
  auto* s = new QSpinBox;
  s->setRange(lo, hi);
  s->setToolTip(tip);
  s->setKeyboardTracking(false);
  return s;
}

// Spin boxes whose range is a row of the one table of limits (dfs/limits.h).
QSpinBox* spin(const dfs::limits::Range& r, const QString& tip) {
  return spin(r.int_min(), r.int_max(), tip);
}

QDoubleSpinBox* dspin(double lo, double hi, double step, int decimals, const QString& tip);

QDoubleSpinBox* dspin(const dfs::limits::Range& r, double step, int decimals, const QString& tip) {
  const double unit = std::pow(10.0, -decimals);  // an open end moves in by one shown digit
  return dspin(r.widget_min(unit), r.widget_max(unit), step, decimals, tip);
}

QDoubleSpinBox* dspin(double lo, double hi, double step, int decimals, const QString& tip) {
  auto* s = new QDoubleSpinBox;
  s->setRange(lo, hi);
  s->setSingleStep(step);
  s->setDecimals(decimals);
  s->setToolTip(tip);
  s->setKeyboardTracking(false);
  return s;
}

// A combo box of `items` (an item's index is its value) with a tooltip.
QComboBox* combo(const QStringList& items, const QString& tip) {
  auto* c = new QComboBox;
  c->addItems(items);
  c->setToolTip(tip);
  return c;
}

// A titled group box at the end of `root`; its rows go in the returned form.
QFormLayout* add_section(QVBoxLayout* root, const QString& title) {
  auto* box = new QGroupBox(title);
  root->addWidget(box);
  return new QFormLayout(box);
}

}  // namespace

void ControlsPanel::build() {
  auto* root = new QVBoxLayout(this);
  root->setContentsMargins(6, 6, 6, 6);

  // [SECTION] What to generate
  QFormLayout* what_form = add_section(root, tr("What to generate"));
  mode_ = combo({tr("Extend the clip"), tr("Regenerate a range"), tr("Fill a gap between pins")},
                tr("Extend: pin the clip's frames and add new frames after it.\n"
                   "Regenerate: re-make a range of the clip at a noise level, the rest pinned.\n"
                   "Fill a gap: keep frames up to A and from B on, re-make those between."));
  what_form->addRow(tr("Mode"), mode_);
  mode_params_ = new QStackedWidget;
  // One page of parameters per mode, in the mode box's order.
  extend_frames_ =
      spin(dfs::limits::kTimelineFrames.int_min(), dfs::limits::kTimelineFrames.int_max(),
           tr("New frames to generate after the last clip frame."));
  mode_params_->addWidget(widget_row({new QLabel(tr("new frames")), extend_frames_}));
  range_first_ =
      spin(0, 100000, tr("First timeline frame to regenerate (the selection fills this)."));
  range_last_ = spin(0, 100000, tr("Last timeline frame to regenerate (inclusive)."));
  range_level_ = dspin(0.01, 1.0, 0.05, 2,
                       tr("Start noise level of the range: 1 = from scratch, "
                          "0.5 = keep the structure, regenerate loosely."));
  range_level_->setValue(1.0);
  mode_params_->addWidget(
      widget_row({range_first_, new QLabel("-"), range_last_, new QLabel(tr("at")), range_level_}));
  gap_a_ = spin(0, 100000, tr("Last kept frame before the gap (pinned)."));
  gap_b_ = spin(0, 100000, tr("First kept frame after the gap (pinned)."));
  mode_params_->addWidget(
      widget_row({new QLabel(tr("keep to")), gap_a_, new QLabel(tr("and from")), gap_b_}));
  what_form->addRow(mode_params_);
  apply_layout_ = new QPushButton(tr("Apply layout"));
  apply_layout_->setToolTip(tr("Rebuild pins and noise levels for the chosen mode (undoable)."));
  what_form->addRow(apply_layout_);
  source_first_ = spin(0, 1000000, tr("First clip frame on the timeline."));
  source_count_ = spin(0, 1000000, tr("How many clip frames the timeline holds (from the first)."));
  what_form->addRow(tr("Clip frames"),
                    widget_row({source_first_, new QLabel(tr("count")), source_count_}));
  fit_ = combo({tr("Letterbox"), tr("Crop"), tr("Stretch")},
               tr("How clip frames are brought to the model's resolution: letterbox keeps "
                  "everything (black bars), crop fills and cuts the edges, stretch distorts."));
  what_form->addRow(tr("Fit to model"), fit_);

  connect(mode_, qOverload<int>(&QComboBox::currentIndexChanged), mode_params_,
          &QStackedWidget::setCurrentIndex);
  connect(apply_layout_, &QPushButton::clicked, this, &ControlsPanel::apply_layout);
  connect(extend_frames_, qOverload<int>(&QSpinBox::valueChanged), this, [this](int n) {
    emit_edit(
        tr("Extend by %1 frames").arg(n),
        [n](project::Project& p) { project::set_new_frames(p.timeline, n); }, "new_frames");
  });
  auto source_changed = [this] {
    const int first = source_first_->value();
    const int count = std::min(source_count_->value(), std::max(0, clip_frames_ - first));
    emit_edit(
        tr("Clip frames %1-%2").arg(first).arg(first + count - 1),
        [first, count](project::Project& p) { resize_source(p.timeline, first, count); },
        "source_range");
  };
  connect(source_first_, qOverload<int>(&QSpinBox::valueChanged), this, source_changed);
  connect(source_count_, qOverload<int>(&QSpinBox::valueChanged), this, source_changed);
  connect(fit_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int i) {
    emit_edit(tr("Fit: %1").arg(fit_->itemText(i)),
              [i](project::Project& p) { p.clip.fit = static_cast<project::FitMode>(i); });
  });

  // [SECTION] Schedule
  QFormLayout* sched_form = add_section(root, tr("Scheduling matrix"));
  shape_ = new QComboBox;
  shape_->addItem(tr("Full sequence"), static_cast<int>(ScheduleShape::FullSequence));
  shape_->addItem(tr("Autoregressive"), static_cast<int>(ScheduleShape::Autoregressive));
  shape_->addItem(tr("Pyramid"), static_cast<int>(ScheduleShape::Pyramid));
  shape_->addItem(tr("Trapezoid"), static_cast<int>(ScheduleShape::Trapezoid));
  shape_->addItem(tr("Async blocks"), static_cast<int>(ScheduleShape::AsyncBlocks));
  shape_->setToolTip(
      tr("How the frames of a window move from noise to clean, step by step "
         "(see the heat map). Custom: row 0 always comes from the per-frame noise "
         "curve, so painting the curve makes any shape a custom schedule."));
  sched_form->addRow(tr("Shape"), shape_);
  steps_ = spin(dfs::limits::kSteps, tr("Sampling steps S: more = slower and usually cleaner."));
  sched_form->addRow(tr("Steps"), steps_);
  uncertainty_ = dspin(dfs::limits::kUncertainty, 0.5, 2,
                       tr("Pyramid/trapezoid: how many steps frame t lags frame "
                          "t-1 (u). 0 = full sequence, S = autoregressive."));
  sched_form->addRow(tr("Uncertainty"), uncertainty_);
  ar_step_ =
      spin(dfs::limits::kArStep, tr("Async blocks: steps each block lags the previous one."));
  block_ = spin(dfs::limits::kBlock, tr("Async blocks: frames per block."));
  sched_form->addRow(tr("Block lag"), widget_row({ar_step_, new QLabel(tr("block")), block_}));
  eta_ = dspin(dfs::limits::kEta, 0.1, 2,
               tr("Sampler stochasticity: 0 = deterministic DDIM, 1 = DDPM-like."));
  sched_form->addRow(tr("Eta"), eta_);
  solver_ = new QComboBox;
  solver_->setObjectName("solver");
  solver_->addItem(tr("DDIM"), static_cast<int>(Solver::Ddim));
  solver_->addItem(tr("DPM-Solver++ (2M)"), static_cast<int>(Solver::DpmPP2M));
  solver_->setToolTip(
      tr("How each frame steps from one noise level to the next. DDIM: first order (eta adds "
         "DDPM-like noise). DPM-Solver++ (2M): second order, reuses each frame's previous "
         "estimate, so fewer steps reach the same quality; deterministic (eta 0)."));
  sched_form->addRow(tr("Solver"), solver_);
  stab_user_ = dspin(dfs::limits::kStabilization, 0.01, 3,
                     tr("Stabilisation level for your pinned frames: they are shown "
                        "to the model slightly noised, which keeps long rollouts stable."));
  stab_generated_ = dspin(dfs::limits::kStabilization, 0.01, 3,
                          tr("Stabilisation level for frames the model generated "
                             "earlier and now uses as context."));
  sched_form->addRow(tr("Stabilise pins"), stab_user_);
  sched_form->addRow(tr("Stabilise generated"), stab_generated_);

  auto shape_edit = [this](const QString& label, const QString& key, const ProjectEdit& change) {
    emit_edit(label, change, key);
  };
  connect(shape_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int i) {
    const auto shape = static_cast<ScheduleShape>(shape_->itemData(i).toInt());
    emit_edit(tr("Schedule: %1").arg(shape_->itemText(i)), [shape](project::Project& p) {
      p.generation.rollout.sampler.schedule.shape = shape;
    });
  });
  connect(steps_, qOverload<int>(&QSpinBox::valueChanged), this, [=, this](int v) {
    shape_edit(tr("Steps %1").arg(v), "steps",
               [v](project::Project& p) { p.generation.rollout.sampler.schedule.steps = v; });
  });
  connect(uncertainty_, qOverload<double>(&QDoubleSpinBox::valueChanged), this,
          [=, this](double v) {
            shape_edit(tr("Uncertainty %1").arg(v), "uncertainty", [v](project::Project& p) {
              p.generation.rollout.sampler.schedule.uncertainty = v;
            });
          });
  connect(ar_step_, qOverload<int>(&QSpinBox::valueChanged), this, [=, this](int v) {
    shape_edit(tr("Block lag %1").arg(v), "ar_step",
               [v](project::Project& p) { p.generation.rollout.sampler.schedule.ar_step = v; });
  });
  connect(block_, qOverload<int>(&QSpinBox::valueChanged), this, [=, this](int v) {
    shape_edit(tr("Block size %1").arg(v), "block",
               [v](project::Project& p) { p.generation.rollout.sampler.schedule.block = v; });
  });
  connect(solver_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int i) {
    const auto solver = static_cast<Solver>(solver_->itemData(i).toInt());
    emit_edit(tr("Solver: %1").arg(solver_->itemText(i)), [solver](project::Project& p) {
      p.generation.rollout.sampler.solver = solver;
      if (solver == Solver::DpmPP2M) p.generation.rollout.sampler.eta = 0;  // deterministic
    });
  });
  connect(eta_, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [=, this](double v) {
    shape_edit(tr("Eta %1").arg(v), "eta",
               [v](project::Project& p) { p.generation.rollout.sampler.eta = v; });
  });
  connect(stab_user_, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [=, this](double v) {
    shape_edit(tr("Stabilisation %1").arg(v), "stab_user",
               [v](project::Project& p) { p.generation.rollout.sampler.stabilization_user = v; });
  });
  connect(
      stab_generated_, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [=, this](double v) {
        shape_edit(
            tr("Stabilisation (generated) %1").arg(v), "stab_generated",
            [v](project::Project& p) { p.generation.rollout.sampler.stabilization_generated = v; });
      });

  // [SECTION] Guidance and window
  QFormLayout* guide_form = add_section(root, tr("History guidance and window"));
  guidance_ = combo({tr("None"), tr("Vanilla"), tr("Fractional")},
                    tr("History guidance (DFoT, Song et al. 2025). None: one model call per step.\n"
                       "Vanilla: eps(empty) + w (eps(history) - eps(empty)).\n"
                       "Fractional: also re-noises the history to level f for the guided term."));
  guide_form->addRow(tr("Guidance"), guidance_);
  guidance_scale_ = dspin(dfs::limits::kGuidanceScale, 0.25, 2,
                          tr("Guidance scale w: 1 = plain, higher = follow the history more."));
  guide_form->addRow(tr("Scale"), guidance_scale_);
  fractional_ = dspin(dfs::limits::kGuidanceFraction, 0.05, 2,
                      tr("Fractional guidance: level f the history is re-noised to."));
  guide_form->addRow(tr("Fraction"), fractional_);
  horizon_ =
      spin(dfs::limits::kHorizon, tr("Guidance horizon: frames generated together in one window. "
                                     "context + horizon must fit the model's max frames."));
  guide_form->addRow(tr("Horizon"), horizon_);
  context_ = spin(dfs::limits::kContext,
                  tr("Known frames (pinned or generated earlier) each window carries."));
  guide_form->addRow(tr("Context"), context_);
  window_pins_ = new QLabel;
  window_pins_->setWordWrap(true);
  window_pins_->setToolTip(
      tr("The known frames the first (or shown) window of the rollout conditions on."));
  guide_form->addRow(tr("Window uses"), window_pins_);
  detail_transfer_ = new QCheckBox(tr("keep the pinned frames' fine detail"));
  detail_transfer_->setObjectName("detail_transfer");
  detail_transfer_->setToolTip(
      tr("Latent models: where the scene is static, generated frames keep the fine texture of the\n"
         "nearest pinned frame that the autoencoder loses. Off: the plain decoding."));
  guide_form->addRow(tr("Detail"), detail_transfer_);
  exact_ = new QCheckBox(tr("exact reference kernels"));
  exact_->setObjectName("exact");
  exact_->setToolTip(
      tr("Run the model op for op as plain LibTorch does: the same bytes as a Python port and as "
         "earlier versions, about half the speed. Off: the fast kernels, equal up to rounding."));
  guide_form->addRow(tr("Kernels"), exact_);
  connect(exact_, &QCheckBox::toggled, this, [this](bool on) {
    emit_edit(on ? tr("Exact kernels") : tr("Fast kernels"),
              [on](project::Project& p) { p.generation.rollout.exact = on; });
  });
  connect(detail_transfer_, &QCheckBox::toggled, this, [this](bool on) {
    emit_edit(on ? tr("Keep pinned detail") : tr("Plain decoding"),
              [on](project::Project& p) { p.generation.rollout.detail_transfer = on; });
  });

  connect(guidance_, qOverload<int>(&QComboBox::currentIndexChanged), this, [=, this](int i) {
    emit_edit(tr("Guidance: %1").arg(guidance_->itemText(i)), [i](project::Project& p) {
      p.generation.rollout.sampler.guidance.mode = static_cast<GuidanceMode>(i);
    });
  });
  connect(
      guidance_scale_, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [=, this](double v) {
        shape_edit(tr("Guidance scale %1").arg(v), "g_scale",
                   [v](project::Project& p) { p.generation.rollout.sampler.guidance.scale = v; });
      });
  connect(fractional_, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [=, this](double v) {
    shape_edit(tr("Guidance fraction %1").arg(v), "g_frac", [v](project::Project& p) {
      p.generation.rollout.sampler.guidance.fractional_level = v;
    });
  });
  connect(horizon_, qOverload<int>(&QSpinBox::valueChanged), this, [=, this](int v) {
    shape_edit(tr("Horizon %1").arg(v), "horizon",
               [v](project::Project& p) { p.generation.rollout.horizon = v; });
  });
  connect(context_, qOverload<int>(&QSpinBox::valueChanged), this, [=, this](int v) {
    shape_edit(tr("Context %1").arg(v), "context",
               [v](project::Project& p) { p.generation.rollout.context = v; });
  });

  // [SECTION] Seed and run
  QFormLayout* run_form = add_section(root, tr("Run"));
  seed_ = new QLineEdit;
  seed_->setValidator(new QRegularExpressionValidator(QRegularExpression("[0-9]{1,19}"), seed_));
  seed_->setToolTip(tr("Random seed: same seed + settings + device = the same frames."));
  seed_locked_ = new QCheckBox(tr("lock"));
  seed_locked_->setToolTip(
      tr("Locked: every run uses this seed. Unlocked: a new seed is drawn per run."));
  randomise_ = new QPushButton(tr("Randomise"));
  randomise_->setToolTip(tr("Draw a new random seed now."));
  run_form->addRow(tr("Seed"), widget_row({{seed_, 1}, seed_locked_, randomise_}));
  generate_ = new QPushButton(tr("Generate"));
  generate_->setToolTip(tr("Generate on a background thread (Ctrl+Enter)."));
  generate_->setDefault(true);
  stop_ = new QPushButton(tr("Stop"));
  stop_->setToolTip(tr("Stop within one sampling step; frames already finished are kept (Esc)."));
  stop_->setEnabled(false);
  run_form->addRow(widget_row({{generate_, 2}, {stop_, 1}}));
  progress_ = new QProgressBar;
  progress_->setRange(0, 1);
  progress_->setValue(0);
  progress_->setTextVisible(true);
  run_form->addRow(progress_);
  progress_text_ = new QLabel(tr("Ready."));
  progress_text_->setWordWrap(true);
  run_form->addRow(progress_text_);
  root->addStretch(1);

  connect(seed_, &QLineEdit::editingFinished, this, [this] {
    const std::uint64_t seed = seed_->text().toULongLong();
    emit_edit(tr("Seed %1").arg(seed),
              [seed](project::Project& p) { p.generation.rollout.seed = seed; });
  });
  connect(seed_locked_, &QCheckBox::toggled, this, [this](bool on) {
    emit_edit(on ? tr("Lock seed") : tr("Unlock seed"),
              [on](project::Project& p) { p.generation.seed_locked = on; });
  });
  connect(randomise_, &QPushButton::clicked, this, [this] {
    const std::uint64_t seed = QRandomGenerator::global()->generate() & 0x7FFFFFFFu;
    emit_edit(tr("Random seed %1").arg(seed),
              [seed](project::Project& p) { p.generation.rollout.seed = seed; });
  });
  connect(generate_, &QPushButton::clicked, this, &ControlsPanel::generate_clicked);
  connect(stop_, &QPushButton::clicked, this, &ControlsPanel::stop_clicked);
}

void ControlsPanel::apply_layout() {
  const int mode = mode_->currentIndex();
  if (mode == 0) {
    const int n = extend_frames_->value();
    emit_edit(tr("Layout: extend by %1").arg(n), [n](project::Project& p) {
      const int first = p.timeline.source_first;
      p.timeline = project::extend_layout(p.timeline.source_count, n);
      p.timeline.source_first = first;
    });
  } else if (mode == 1) {
    const int a = range_first_->value();
    const int b = range_last_->value();
    const double level = range_level_->value();
    emit_edit(tr("Layout: regenerate %1-%2").arg(a).arg(b), [a, b, level](project::Project& p) {
      const int first = p.timeline.source_first;
      p.timeline = project::regenerate_layout(p.timeline.source_count, a, b, level);
      p.timeline.source_first = first;
    });
  } else {
    const int a = gap_a_->value();
    const int b = gap_b_->value();
    emit_edit(tr("Layout: fill gap %1-%2").arg(a).arg(b), [a, b](project::Project& p) {
      const int first = p.timeline.source_first;
      p.timeline = project::fill_gap_layout(p.timeline.source_count, a, b);
      p.timeline.source_first = first;
    });
  }
}

void ControlsPanel::refresh(const project::Project& p, const diffusion::ModelInfo* model) {
  const QList<QWidget*> all = findChildren<QWidget*>();
  std::vector<std::unique_ptr<QSignalBlocker>> blockers;
  for (QWidget* w : all) blockers.push_back(std::make_unique<QSignalBlocker>(w));

  clip_frames_ = p.clip.frame_count;
  const auto& t = p.timeline;
  const auto& r = p.generation.rollout;
  const auto& s = r.sampler;
  extend_frames_->setValue(t.new_frames);
  source_first_->setMaximum(std::max(0, clip_frames_ - 1));
  source_first_->setValue(t.source_first);
  source_count_->setMaximum(std::max(0, clip_frames_ - t.source_first));
  source_count_->setValue(t.source_count);
  const int last = std::max(0, t.length() - 1);
  for (QSpinBox* b : {range_first_, range_last_, gap_a_, gap_b_}) b->setMaximum(last);
  fit_->setCurrentIndex(static_cast<int>(p.clip.fit));
  shape_->setCurrentIndex(shape_->findData(static_cast<int>(s.schedule.shape)));
  steps_->setValue(s.schedule.steps);
  uncertainty_->setValue(s.schedule.uncertainty);
  ar_step_->setValue(s.schedule.ar_step);
  block_->setValue(s.schedule.block);
  const bool pyramid_like =
      s.schedule.shape == ScheduleShape::Pyramid || s.schedule.shape == ScheduleShape::Trapezoid;
  uncertainty_->setEnabled(pyramid_like);
  ar_step_->setEnabled(s.schedule.shape == ScheduleShape::AsyncBlocks);
  block_->setEnabled(s.schedule.shape == ScheduleShape::AsyncBlocks);
  eta_->setValue(s.eta);
  eta_->setEnabled(s.solver == Solver::Ddim);
  solver_->setCurrentIndex(solver_->findData(static_cast<int>(s.solver)));
  stab_user_->setValue(s.stabilization_user);
  stab_generated_->setValue(s.stabilization_generated);
  guidance_->setCurrentIndex(static_cast<int>(s.guidance.mode));
  guidance_scale_->setValue(s.guidance.scale);
  guidance_scale_->setEnabled(s.guidance.mode != GuidanceMode::None);
  fractional_->setValue(s.guidance.fractional_level);
  fractional_->setEnabled(s.guidance.mode == GuidanceMode::Fractional);
  const int max_frames = model != nullptr && model->max_frames > 0 ? model->max_frames : 1000;
  horizon_->setMaximum(max_frames);
  context_->setMaximum(std::max(0, max_frames - 1));
  horizon_->setValue(r.horizon);
  context_->setValue(r.context);
  if (model != nullptr) {
    const bool fits = r.context + r.horizon <= model->max_frames;
    const QString warn = fits ? QString() : QStringLiteral("QSpinBox { color: #ff7060; }");
    horizon_->setStyleSheet(warn);
    context_->setStyleSheet(warn);
  }
  detail_transfer_->setChecked(r.detail_transfer);
  exact_->setChecked(r.exact);
  detail_transfer_->setEnabled(model == nullptr || model->latent_channels > 0);
  if (!seed_->hasFocus()) seed_->setText(QString::number(r.seed));
  seed_locked_->setChecked(p.generation.seed_locked);
}

void ControlsPanel::set_selection(int first, int last) {
  if (first > last) return;
  range_first_->setValue(first);
  range_last_->setValue(last);
  gap_a_->setValue(std::max(0, first - 1));
  gap_b_->setValue(last + 1);
}

void ControlsPanel::set_running(bool running) {
  generate_->setEnabled(!running);
  stop_->setEnabled(running);
  apply_layout_->setEnabled(!running);
}

void ControlsPanel::set_progress(int value, int maximum, const QString& text) {
  // QProgressBar::setValue repaints at once (a synchronous paint and flush to the display
  // server, which on a busy machine waits for the server: 5-10 ms per update under Xvfb). With
  // updates off it only stores the value; turning them on schedules an ordinary repaint, drawn
  // with the rest of the window.
  progress_->setUpdatesEnabled(false);
  progress_->setRange(0, std::max(1, maximum));
  progress_->setValue(std::clamp(value, 0, std::max(1, maximum)));
  progress_->setUpdatesEnabled(true);
  progress_text_->setText(text);
}

void ControlsPanel::set_window_pins(const QString& text) {
  window_pins_->setText(text);
}

}  // namespace dfs::ui
