#!/usr/bin/env python3
"""bench_eager.py -- `dforce bench` for the plain PyTorch-eager port (dfs_eager.py).

The same cases as app/dforce/cmd_bench.cpp (names, shapes, steps, guidance, causal variants,
KV cache), the same window (context 4 + horizon 12 by default), the same frame counts (4 x
horizon generated frames per 10-step case, 2 x with --quick, one horizon at 50 steps), the
same conditioning frames (bench_frame()), pyramid uncertainty 1.0, vanilla history guidance at
scale 1.5, seed 0, detail transfer on, no previews; frames/s is generated frames over the
rollout's wall time, as the C++ measures it.

  python3 bench_eager.py --quick --model models/demo.safetensors          # table
  python3 bench_eager.py --quick --model models/demo.safetensors --json   # JSON

Threads: --threads N sets torch.set_num_threads(N); the default is the number of cores (the
engine's default; note that torch's own default on the 2-core test VM is 1). By default
OpenBLAS keeps its own default thread count, as a plain Python user gets it. With
--match-engine-threads the port copies runtime.cpp: OpenBLAS on 1 thread ($DFS_BLAS_THREADS)
and, when --threads is not given, the engine's load-following thread count
(adapt_threads_to_load: fewer threads while other processes keep cores busy).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dfs_eager as de  # noqa: E402

# cmd_bench.cpp run_bench(): (name, causal?, shape, steps, guidance, kv_cache)
CASES = [
    ("full_sequence s10", False, "full_sequence", 10, "none", False),
    ("pyramid s10", False, "pyramid", 10, "none", False),
    ("full_sequence s10 guided", False, "full_sequence", 10, "vanilla", False),
    ("pyramid s10 guided", False, "pyramid", 10, "vanilla", False),
    ("causal full_sequence s10", True, "full_sequence", 10, "none", False),
    ("causal+KV full_sequence s10", True, "full_sequence", 10, "none", True),
    ("causal+KV pyramid s10", True, "pyramid", 10, "none", True),
    ("full_sequence s50", False, "full_sequence", 50, "none", False),
    ("pyramid s50", False, "pyramid", 50, "none", False),
    ("full_sequence s50 guided", False, "full_sequence", 50, "vanilla", False),
]


def bench_frame(w: int, h: int, seed: int) -> np.ndarray:
    """cmd_bench.cpp bench_frame(): a deterministic gradient pattern, uint8 [h, w, 3]."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return ((x * 4 + y * 2 + seed * 9 + c * 60) & 255).astype(np.uint8)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(model: de.Model, a, case) -> dict:
    name, _, shape, steps, guidance, kv_cache = case
    generated = a.frames if a.frames > 0 else (a.horizon if steps >= 50 else
                                               (2 if a.quick else 4) * a.horizon)
    timeline = [de.TimelineFrame(content=bench_frame(model.width, model.height, i), pinned=True)
                for i in range(a.context)]
    timeline += [de.TimelineFrame() for _ in range(generated)]
    settings = de.RolloutSettings(
        sampler=de.SamplerSettings(
            schedule=de.ScheduleSettings(shape=shape, steps=steps, uncertainty=1.0),
            guidance=de.GuidanceSettings(mode=guidance, scale=1.5)),
        context=a.context, horizon=a.horizon, kv_cache=kv_cache)
    count = {"frames": 0}

    def on_frame(index, _frame):
        if index >= a.context:
            count["frames"] += 1
    cpu0 = time.process_time()
    with torch.inference_mode():
        result = de.run_rollout(model, timeline, settings, want_preview=False, on_frame=on_frame)
    cpu = time.process_time() - cpu0
    frames = count["frames"]
    return {"case": name, "shape": shape, "steps": steps, "guidance": guidance,
            "causal": model.causal, "kv_cache": kv_cache, "frames": frames,
            "seconds": result.seconds, "cpu_seconds": cpu,
            "frames_per_cpu_second": frames / cpu if cpu > 0 else 0.0,
            "frames_per_second": frames / result.seconds,
            "forwards": result.forwards,
            "ms_per_forward": 1000.0 * result.seconds / max(1, result.forwards),
            "peak_rss_mib": peak_rss_mib()}


def profile_forward(model: de.Model, window: int, repeats: int) -> dict:
    """One forward of a full window (as cmd_bench.cpp profile_forward times it)."""
    c = model.config
    with torch.inference_mode():
        x = torch.randn(1, window, c.channels, c.height, c.width)
        levels = torch.rand(1, window)
        model.net.forward(x, levels)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        for _ in range(repeats):
            model.net.forward(x, levels)
        wall = (time.perf_counter() - t0) * 1000.0 / repeats
        cpu = (time.process_time() - cpu0) * 1000.0 / repeats
    return {"window_frames": window, "ms_forward": wall, "cpu_ms_forward": cpu}


def autoencoder_times(model: de.Model, a) -> dict:
    ae = model.ae
    c = model.config
    reps = 3 if a.quick else 10
    with torch.inference_mode():
        pixels = torch.rand(a.horizon, 3, model.height, model.width) * 2 - 1
        latents = torch.randn(a.horizon, c.channels, c.height, c.width)

        def time_ms(fn):
            fn()
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            return (time.perf_counter() - t0) * 1000.0 / (reps * a.horizon)
        return {"encoder_ms_per_frame": time_ms(lambda: ae.encode(pixels)),
                "decoder_ms_per_frame": time_ms(lambda: ae.decode(latents)),
                "preview_ms_per_frame": time_ms(lambda: ae.preview(latents))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--quick", action="store_true", help="only the 10-step cases, fewer frames")
    ap.add_argument("--config", default="latent", help="model preset with random weights")
    ap.add_argument("--model", default="", help="bench this model file (its weights)")
    ap.add_argument("--context", type=int, default=4)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--frames", type=int, default=0, help="generated frames per case (0 = auto)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads (default: all cores, as the engine)")
    ap.add_argument("--match-engine-threads", action="store_true",
                    help="OpenBLAS on 1 thread and the engine's load-following thread count")
    ap.add_argument("--cases", default="",
                    help="comma-separated case names to run (default: all of the mode)")
    a = ap.parse_args(argv)

    de.configure_threads(a.threads, a.match_engine_threads)
    model = de.Model.load(a.model) if a.model else de.Model.random(a.config, 0)
    causal_model = model.causal_variant()
    if a.context + a.horizon > model.max_frames:
        raise SystemExit(f"--context + --horizon exceeds the model's {model.max_frames} frames")
    cases = CASES[:7] if a.quick else CASES
    if a.cases:
        wanted = [c.strip() for c in a.cases.split(",")]
        cases = [c for c in CASES if c[0] in wanted]

    report = {
        "implementation": "python-eager (tools/python_eager/dfs_eager.py)",
        "torch": torch.__version__, "python": sys.version.split()[0],
        "threads": torch.get_num_threads(), "openblas_threads": de.openblas_threads(),
        "match_engine_threads": a.match_engine_threads,
        "adaptive_threads": de.ADAPT_THREADS is not None,
        "model": model.config.name, "weights": model.source,
        "resolution": f"{model.width}x{model.height}", "context": a.context,
        "horizon": a.horizon, "load_average": os.getloadavg()[0], "cases": []}
    if not a.json:
        print(f"bench_eager: model {model.config.name} ({model.width}x{model.height}, "
              f"{model.source}), python-eager torch {torch.__version__}")
        print(f"  torch threads {torch.get_num_threads()}, OpenBLAS threads "
              f"{de.openblas_threads()}{' (engine thread policy)' if a.match_engine_threads else ''}"
              f"; context {a.context} + horizon {a.horizon} frames per window")
        print(f"  machine load average {os.getloadavg()[0]:.1f} before the run")
        print(f"  {'case':<28} {'frames':>7} {'seconds':>8} {'frames/s':>9} {'cpu s':>8} "
              f"{'forwards':>9} {'ms/forward':>10} {'peak RSS':>9}")
    for case in cases:
        row = measure(causal_model if case[1] else model, a, case)
        report["cases"].append(row)
        if not a.json:
            print(f"  {row['case']:<28} {row['frames']:7d} {row['seconds']:8.2f} "
                  f"{row['frames_per_second']:9.1f} {row['cpu_seconds']:8.2f} "
                  f"{row['forwards']:9d} {row['ms_per_forward']:10.1f} "
                  f"{row['peak_rss_mib']:7.0f} MiB", flush=True)
    if not a.cases:
        report["profile"] = profile_forward(model, a.context + a.horizon, 3 if a.quick else 10)
        if model.ae is not None:
            report["autoencoder"] = autoencoder_times(model, a)
    if a.json:
        print(json.dumps(report, indent=2))
    elif "profile" in report:
        p = report["profile"]
        print(f"  one {p['window_frames']}-frame forward: {p['ms_forward']:.1f} ms wall, "
              f"{p['cpu_ms_forward']:.1f} ms CPU")
        if "autoencoder" in report:
            e = report["autoencoder"]
            print(f"  autoencoder: encoder {e['encoder_ms_per_frame']:.1f} ms/frame, decoder "
                  f"{e['decoder_ms_per_frame']:.1f} ms/frame, preview "
                  f"{e['preview_ms_per_frame']:.2f} ms/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
