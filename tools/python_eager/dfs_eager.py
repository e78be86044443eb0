#!/usr/bin/env python3
"""dfs_eager.py -- an independent, plain PyTorch-eager port of the dforce sampling path.

What this is for: the performance comparison "C++ engine vs Python eager" at equal output.
The port runs the same rollout as the engine (core/diffusion/src): the same windows, the same
scheduling matrices, the same per-frame DDIM updates, the same history guidance, the same
network, the same autoencoder, the same random numbers -- and, because Debian's python3-torch
is the very LibTorch 1.13.1 the engine links, the same kernels in the same order give the same
bytes (README.md says where that was checked and what it found).

Nothing here imports or calls the engine: the model file is parsed by hand (safetensors:
8-byte little-endian header length, a JSON header, raw little-endian tensor bytes) and every
formula is re-written from the C++ source named in each section.

Usage (see README.md):
  python3 dfs_eager.py extend --clip-frames DIR -n 8 -o OUT/ --model models/demo.safetensors \
      --schedule full_sequence --steps 10 --seed 7 --threads 1
  python3 dfs_eager.py info --model models/demo.safetensors

Sections
  [1] Model files (weights.cpp, model_file.cpp, model_config.cpp)
  [2] Noise schedules and objectives (noise.cpp)
  [3] Scheduling matrices (schedule.cpp)
  [4] The denoiser network (network.cpp)
  [5] The autoencoder (autoencoder.cpp)
  [6] Denoiser wrapper, KV cache, history guidance (model_denoiser.cpp, denoise.cpp, guidance.cpp)
  [7] The window sampler (sampler.cpp)
  [8] Rollouts (rollout.cpp) and the extend layout (project/generation_job.cpp)
  [9] Threads (runtime.cpp) and the command line
"""
from __future__ import annotations

import argparse
import bisect
import ctypes
import json
import math
import os
import struct
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------
# [1] Model files
# ------------------------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {
    "F64": (torch.float64, 8), "F32": (torch.float32, 4), "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2), "I64": (torch.int64, 8), "I32": (torch.int32, 4),
    "I16": (torch.int16, 2), "I8": (torch.int8, 1), "U8": (torch.uint8, 1), "BOOL": (torch.bool, 1),
}


def load_safetensors(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Reads a .safetensors file: (tensors by name, __metadata__ strings). Our own parser."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise ValueError(f"{path}: header claims {header_len} bytes (truncated?)")
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    buffer = memoryview(data)[8 + header_len:]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, entry in header.items():
        dtype, size = _SAFETENSORS_DTYPES[entry["dtype"]]
        shape = [int(d) for d in entry["shape"]]
        begin, end = (int(o) for o in entry["data_offsets"])
        if end - begin != size * math.prod(shape):
            raise ValueError(f"{path}: tensor {name} has a wrong byte count")
        raw = bytearray(buffer[begin:end])  # a private, writable copy
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(shape).clone()
    return tensors, metadata


@dataclass
class ModelConfig:
    """model.h ModelConfig with its defaults; from_json as model_config.cpp reads it."""
    name: str = "demo"
    width: int = 64
    height: int = 48
    channels: int = 3
    max_frames: int = 16
    patch: int = 4
    dim: int = 96
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    overlap: bool = False
    causal: bool = False
    objective: str = "v"
    noise_schedule: str = "cosine"
    sigma_data: float = 1.0

    @staticmethod
    def from_json(j: dict) -> "ModelConfig":
        c = ModelConfig()
        for key in ("name", "width", "height", "channels", "max_frames", "patch", "dim", "depth",
                    "heads", "mlp_ratio", "overlap", "causal", "objective", "noise_schedule",
                    "sigma_data"):
            if key in j:
                setattr(c, key, j[key])
        if c.objective not in ("v", "x0", "eps", "edm"):
            raise ValueError(f"unknown objective {c.objective}")
        if c.noise_schedule not in ("cosine", "sigmoid", "linear"):
            raise ValueError(f"unknown noise schedule {c.noise_schedule}")
        return c

    @staticmethod
    def preset(name: str) -> "ModelConfig":
        """ModelConfig::preset (model_config.cpp), for random-weight benches."""
        if name in ("demo", "demo-causal"):
            return ModelConfig(name=name, width=64, height=48, max_frames=16, patch=8, dim=96,
                               depth=4, heads=4, causal=name == "demo-causal")
        if name in ("latent", "latent-causal"):
            return ModelConfig(name=name, width=32, height=24, channels=8, max_frames=16, patch=4,
                               dim=128, depth=4, heads=4, mlp_ratio=2, overlap=True,
                               causal=name == "latent-causal", objective="edm", sigma_data=1.0)
        if name == "latent-tiny":
            return ModelConfig(name=name, width=8, height=6, channels=8, max_frames=16, patch=2,
                               dim=32, depth=2, heads=2, mlp_ratio=2, overlap=True,
                               objective="edm", sigma_data=1.0)
        if name in ("tiny", "tiny-causal"):
            return ModelConfig(name=name, width=32, height=24, max_frames=8, patch=4, dim=32,
                               depth=2, heads=2, mlp_ratio=2, causal=name == "tiny-causal")
        raise ValueError(f"unknown model preset '{name}'")


# ------------------------------------------------------------------------------------------
# [2] Noise schedules and objectives (noise.cpp)
# ------------------------------------------------------------------------------------------

K_TRAIN_TIMESTEPS = 1000  # noise.h kTrainTimesteps
K_MIN_ALPHA_BAR = 1e-5    # noise.h kMinAlphaBar
K_TINY_VARIANCE = 1e-12


def _cosine_alpha_bar(n: float) -> float:
    s = 0.008

    def f(x: float) -> float:
        c = math.cos((x + s) / (1.0 + s) * math.pi / 2.0)
        return c * c
    return f(n) / f(0.0)


def _sigmoid_alpha_bar(n: float) -> float:
    start, end, tau = -3.0, 3.0, 1.0

    def sig(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-x))
    v_start = sig(start / tau)
    v_end = sig(end / tau)
    return (v_end - sig((n * (end - start) + start) / tau)) / (v_end - v_start)


def _make_table(kind: str) -> List[float]:
    kk = K_TRAIN_TIMESTEPS
    table = [0.0] * (kk + 1)
    if kind == "linear":
        abar = 1.0
        table[0] = 1.0
        for k in range(1, kk + 1):
            beta = 1e-4 + (0.02 - 1e-4) * (k - 1) / (kk - 1)
            abar *= 1.0 - beta
            table[k] = abar
    else:
        for k in range(kk + 1):
            n = k / kk
            table[k] = _cosine_alpha_bar(n) if kind == "cosine" else _sigmoid_alpha_bar(n)
    table[0] = 1.0
    return [min(max(a, K_MIN_ALPHA_BAR), 1.0) for a in table]


class NoiseSchedule:
    """NoiseSchedule: abar tabulated at the K + 1 training steps, log-linear in between."""
    _tables: Dict[str, List[float]] = {}
    _log_tables: Dict[str, torch.Tensor] = {}

    def __init__(self, kind: str = "cosine", sigma_data: float = 1.0):
        self.kind = kind
        self.sigma_data = sigma_data
        if kind not in NoiseSchedule._tables:
            table = _make_table(kind)
            NoiseSchedule._tables[kind] = table
            NoiseSchedule._log_tables[kind] = torch.tensor([math.log(a) for a in table],
                                                           dtype=torch.float64)
        self.table = NoiseSchedule._tables[kind]
        self.log_table = NoiseSchedule._log_tables[kind]

    def alpha_bar_scalar(self, level: float) -> float:
        kk = K_TRAIN_TIMESTEPS
        table = self.table
        if not level > 0.0:
            return table[0]
        if level >= 1.0:
            return table[kk]
        position = level * kk
        lo = min(int(position), kk - 1)
        frac = position - lo
        if frac == 0.0:
            return table[lo]
        return math.exp((1.0 - frac) * math.log(table[lo]) + frac * math.log(table[lo + 1]))

    def alpha_bar(self, levels: torch.Tensor) -> torch.Tensor:
        kk = K_TRAIN_TIMESTEPS
        log_table = self.log_table.to(levels.device)
        position = levels.to(torch.float64).clamp(0.0, 1.0) * kk
        lo = position.floor().clamp(0, kk - 1)
        frac = position - lo
        lo_index = lo.to(torch.long)
        log_abar = (1.0 - frac) * log_table[lo_index] + frac * log_table[lo_index + 1]
        dtype = levels.dtype if levels.is_floating_point() else torch.float32
        return log_abar.exp().to(dtype)

    @staticmethod
    def _expand_like(per_frame: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = per_frame
        while out.dim() < x.dim():
            out = out.unsqueeze(-1)
        return out

    def edm_input_scale(self, levels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        abar = self._expand_like(self.alpha_bar(levels).to(like.dtype), like)
        sd = self.sigma_data
        return ((1.0 - abar) + abar * (sd * sd)).rsqrt()

    def _edm_coefficients(self, abar: torch.Tensor):
        sd = self.sigma_data
        q = (1.0 - abar) + abar * (sd * sd)
        return abar.sqrt() * (sd * sd) / q, sd * (1.0 - abar).clamp_min(0).sqrt() / q.sqrt()

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        abar = self._expand_like(self.alpha_bar(levels).to(x0.dtype), x0)
        return abar.sqrt() * x0 + (1.0 - abar).clamp_min(0).sqrt() * eps

    def to_x0(self, objective: str, prediction: torch.Tensor, x_n: torch.Tensor,
              levels: torch.Tensor) -> torch.Tensor:
        abar = self._expand_like(self.alpha_bar(levels).to(x_n.dtype), x_n)
        a = abar.sqrt()
        s = (1.0 - abar).clamp_min(0).sqrt()
        if objective == "x0":
            return prediction
        if objective == "eps":
            return (x_n - s * prediction) / a
        if objective == "edm":
            skip_xn, out = self._edm_coefficients(abar)
            return skip_xn * x_n + out * prediction
        return a * x_n - s * prediction


# ------------------------------------------------------------------------------------------
# [3] Scheduling matrices (schedule.cpp)
# ------------------------------------------------------------------------------------------

@dataclass
class ScheduleSettings:
    shape: str = "pyramid"  # full_sequence, autoregressive, pyramid, trapezoid, async_blocks
    steps: int = 10
    uncertainty: float = 1.0
    ar_step: int = 2
    block: int = 2


@dataclass
class SchedulingMatrix:
    rows: int
    frames: int
    steps: int
    cells: List[int]

    def at(self, m: int, t: int) -> int:
        return self.cells[m * self.frames + t]


def _lround(x: float) -> int:
    """std::lround: halves away from zero (Python's round() rounds halves to even)."""
    n = math.floor(abs(x))
    r = n + 1 if abs(x) - n >= 0.5 else n
    return int(math.copysign(r, x))


def _shape_lag(s: ScheduleSettings, rank: int, count: int) -> int:
    if s.shape == "full_sequence":
        return 0
    if s.shape == "autoregressive":
        return rank * s.steps
    if s.shape == "pyramid":
        return int(math.floor(rank * s.uncertainty))
    if s.shape == "trapezoid":
        return int(math.floor(min(rank, count - 1 - rank) * s.uncertainty))
    if s.shape == "async_blocks":
        return (rank // s.block) * s.ar_step
    raise ValueError(f"unknown schedule shape '{s.shape}'")


def build_schedule(s: ScheduleSettings, start_levels: List[float]) -> SchedulingMatrix:
    frames, steps = len(start_levels), s.steps
    start = [_lround(level * steps) for level in start_levels]
    generated = sum(1 for v in start if v > 0)
    lag = [0] * frames
    rank = 0
    max_lag = 0
    for t in range(frames):
        if start[t] == 0:
            continue
        lag[t] = _shape_lag(s, rank, generated)
        rank += 1
        max_lag = max(max_lag, lag[t])
    cells: List[int] = []
    rows = 0
    previous: Optional[List[int]] = None
    for m in range(steps + max_lag + 1):
        row = [min(start[t], min(max(steps + lag[t] - m, 0), steps)) for t in range(frames)]
        if previous is not None and row == previous:
            continue
        cells.extend(row)
        previous = row
        rows += 1
    return SchedulingMatrix(rows, frames, steps, cells)


# ------------------------------------------------------------------------------------------
# [4] The denoiser network (network.cpp)
# ------------------------------------------------------------------------------------------

K_LEVEL_FREQUENCIES = 64
K_LAYER_NORM_EPS = 1e-6


def _level_features(levels: torch.Tensor) -> torch.Tensor:
    half = K_LEVEL_FREQUENCIES // 2
    freqs = torch.exp(-math.log(10000.0) *
                      torch.arange(half, dtype=torch.float32, device=levels.device) / half)
    args = (levels.to(torch.float32) * K_TRAIN_TIMESTEPS).unsqueeze(-1) * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


def _rotary_tables(positions: torch.Tensor, head_dim: int, dtype: torch.dtype):
    half = head_dim // 2
    inv_freq = torch.pow(10000.0, -torch.arange(half, dtype=torch.float32,
                                                device=positions.device) / half)
    angles = positions.to(torch.float32).unsqueeze(-1) * inv_freq
    full = torch.cat([angles, angles], -1)
    return full.cos().to(dtype), full.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    halves = x.chunk(2, -1)
    return torch.cat([-halves[1], halves[0]], -1)


def _layer_norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, [x.size(-1)], None, None, K_LAYER_NORM_EPS)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(shift, _layer_norm(x), 1 + scale)


def denoiser_parameter_shapes(c: ModelConfig) -> List[Tuple[str, List[int]]]:
    """The network's parameters in the order LibTorch's named_parameters() lists them (the
    module's own first, then its children depth-first in registration order): the order in
    which reset_parameters() draws random numbers."""
    d, p = c.dim, c.patch
    kernel = 2 * p if c.overlap else p
    tokens = (c.width // p) * (c.height // p)
    out: List[Tuple[str, List[int]]] = [("spatial_pos", [1, tokens, d])]

    def linear(name: str, i: int, o: int):
        out.extend([(f"{name}.weight", [o, i]), (f"{name}.bias", [o])])
    linear("level_in", K_LEVEL_FREQUENCIES, d)
    linear("level_out", d, d)
    out.extend([("stem.weight", [d, c.channels, kernel, kernel]), ("stem.bias", [d])])
    for i in range(c.depth):
        b = f"blocks.{i}"
        for a in ("spatial", "temporal"):
            linear(f"{b}.{a}.qkv", d, 3 * d)
            linear(f"{b}.{a}.proj", d, d)
        linear(f"{b}.fc1", d, c.mlp_ratio * d)
        linear(f"{b}.fc2", c.mlp_ratio * d, d)
        linear(f"{b}.modulation", d, 9 * d)
    linear("final_modulation", d, 2 * d)
    if c.overlap:
        out.extend([("head.weight", [d, c.channels, kernel, kernel]),
                    ("head.bias", [c.channels])])
    else:
        linear("head", d, c.channels * p * p)
    return out


def denoiser_random_parameters(c: ModelConfig, seed: int) -> Dict[str, torch.Tensor]:
    """DenoiserImpl::reset_parameters(seed): one CPU generator, parameters in order."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in denoiser_parameter_shapes(c):
        if name == "spatial_pos" or "modulation.weight" in name:
            value = torch.randn(shape, generator=gen, dtype=torch.float32) * 0.02
        elif len(shape) >= 2:
            receptive = math.prod(shape) // (shape[0] * shape[1])
            fan_in = float(shape[1] * receptive)
            fan_out = float(shape[0] * receptive)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            value = (torch.rand(shape, generator=gen, dtype=torch.float32) * 2 - 1) * bound
        else:
            value = torch.zeros(shape, dtype=torch.float32)
        params[name] = value
    return params


class KVCache:
    def __init__(self):
        self.clear()

    def clear(self):
        self.keys: List[torch.Tensor] = []
        self.values: List[torch.Tensor] = []
        self.positions: Optional[torch.Tensor] = None

    def frames(self) -> int:
        return 0 if self.positions is None else self.positions.size(0)


class Denoiser:
    """DenoiserImpl: stem conv + spatial_pos, space-time DiT blocks (adaLN), rotary temporal
    attention, and a linear or overlapping transposed-conv head."""

    def __init__(self, config: ModelConfig, params: Dict[str, torch.Tensor]):
        self.c = config
        expected = dict(denoiser_parameter_shapes(config))
        missing = [n for n in expected if n not in params]
        bad = [n for n in expected if n in params and list(params[n].shape) != expected[n]]
        if missing or bad:
            raise ValueError(f"weights do not match the config: missing {missing[:6]}, "
                             f"mis-shaped {bad[:6]}")
        self.p = {n: params[n].to(torch.float32).contiguous() for n in expected}
        self.calls = 0

    def _lin(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.p[name + ".weight"], self.p[name + ".bias"])

    def _attention(self, prefix: str, x, rope_cos, rope_sin, mask, past_k, past_v, kv_out):
        n, s, dim = x.size(0), x.size(1), x.size(2)
        heads = self.c.heads
        head_dim = dim // heads
        parts = self._lin(prefix + ".qkv", x).view(n, s, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = parts[0], parts[1], parts[2]
        if rope_cos is not None:
            q = q * rope_cos + _rotate_half(q) * rope_sin
            k = k * rope_cos + _rotate_half(k) * rope_sin
        if kv_out is not None:
            kv_out.extend([k, v])
        if past_k is not None:
            k = torch.cat([past_k, k], 2)
            v = torch.cat([past_v, v], 2)
        # LibTorch 1.x path of network.cpp: matmul / softmax / matmul.
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(float(head_dim)))
        if mask is not None:
            scores = scores + mask.to(scores.dtype)
        out = torch.matmul(torch.softmax(scores, -1), v)
        return self._lin(prefix + ".proj", out.transpose(1, 2).reshape(n, s, dim))

    def _block(self, i, h_in, cond, rope_cos, rope_sin, mask, past_k, past_v, kv_out):
        b, t, l, d = h_in.shape
        pre = f"blocks.{i}"
        m = self._lin(pre + ".modulation", cond).unsqueeze(2).chunk(9, -1)
        h = h_in
        y = _modulate(h, m[0], m[1]).reshape(b * t, l, d)
        y = self._attention(pre + ".spatial", y, None, None, None, None, None, None)
        y = y.view(b, t, l, d)
        h = torch.addcmul(h, m[2], y)
        y = _modulate(h, m[3], m[4]).permute(0, 2, 1, 3).reshape(b * l, t, d)
        y = self._attention(pre + ".temporal", y, rope_cos, rope_sin, mask, past_k, past_v, kv_out)
        y = y.view(b, l, t, d).permute(0, 2, 1, 3)
        h = torch.addcmul(h, m[5], y)
        y = self._lin(pre + ".fc2", F.gelu(self._lin(pre + ".fc1", _modulate(h, m[6], m[7]))))
        h = torch.addcmul(h, m[8], y)
        return h

    def forward(self, x_in: torch.Tensor, levels_in: torch.Tensor,
                positions_in: Optional[torch.Tensor] = None,
                cache: Optional[KVCache] = None, append: bool = False) -> torch.Tensor:
        c = self.c
        self.calls += 1
        b, t = x_in.size(0), x_in.size(1)
        dtype = torch.float32
        levels = levels_in.to(torch.float32)
        x = x_in.to(dtype)
        if c.objective == "edm":
            x = x * NoiseSchedule(c.noise_schedule, c.sigma_data).edm_input_scale(levels, x).to(dtype)
        past = cache.frames() if cache is not None else 0
        if positions_in is not None:
            positions = positions_in.to(torch.float32)
        else:
            positions = torch.arange(past, past + t, dtype=torch.float32)

        emb = self._lin("level_out", F.silu(self._lin("level_in", _level_features(levels).to(dtype))))
        cond = F.silu(emb)

        p = c.patch
        gh, gw = c.height // p, c.width // p
        tokens = gh * gw
        kernel_pad = p // 2 if c.overlap else 0
        h = F.conv2d(x.reshape(b * t, c.channels, c.height, c.width), self.p["stem.weight"],
                     self.p["stem.bias"], stride=p, padding=kernel_pad)
        h = (h.flatten(2).transpose(1, 2) + self.p["spatial_pos"]).reshape(b, t, tokens, c.dim)

        rope_cos, rope_sin = _rotary_tables(positions, c.dim // c.heads, dtype)
        mask = None
        if c.causal:
            key_positions = torch.cat([cache.positions, positions]) if past > 0 else positions
            mask = torch.zeros(t, past + t, dtype=torch.float32).masked_fill(
                key_positions.unsqueeze(0) > positions.unsqueeze(1), -math.inf)

        new_kv: List[List[torch.Tensor]] = []
        for i in range(c.depth):
            past_k = past_v = None
            if past > 0:
                past_k, past_v = cache.keys[i], cache.values[i]
            kv_out: Optional[List[torch.Tensor]] = [] if cache is not None else None
            h = self._block(i, h, cond, rope_cos, rope_sin, mask, past_k, past_v, kv_out)
            if kv_out is not None:
                new_kv.append(kv_out)
        if cache is not None and append:
            if past == 0:
                cache.keys = [kv[0] for kv in new_kv]
                cache.values = [kv[1] for kv in new_kv]
                cache.positions = positions
            else:
                for i in range(c.depth):
                    cache.keys[i] = torch.cat([cache.keys[i], new_kv[i][0]], 2)
                    cache.values[i] = torch.cat([cache.values[i], new_kv[i][1]], 2)
                cache.positions = torch.cat([cache.positions, positions])

        fm = self._lin("final_modulation", cond).unsqueeze(2).chunk(2, -1)
        h = _modulate(h, fm[0], fm[1])
        if c.overlap:
            h = F.conv_transpose2d(h.reshape(b * t, gh, gw, c.dim).permute(0, 3, 1, 2),
                                   self.p["head.weight"], self.p["head.bias"], stride=p,
                                   padding=kernel_pad)
        else:
            h = self._lin("head", h)
            h = h.reshape(b * t, gh, gw, c.channels * p * p).permute(0, 3, 1, 2)
            h = F.pixel_shuffle(h, p)
        return h.reshape(b, t, c.channels, c.height, c.width).to(torch.float32)


# ------------------------------------------------------------------------------------------
# [5] The autoencoder (autoencoder.cpp)
# ------------------------------------------------------------------------------------------

K_LATENT_FACTOR = 8
K_LATENT_BOUND = 3.0
K_DETAIL_TOLERANCE = 0.2


@dataclass
class AutoencoderConfig:
    latent_channels: int = 8
    encoder_widths: List[int] = field(default_factory=lambda: [32, 48, 64])
    encoder_blocks: List[int] = field(default_factory=lambda: [0, 1, 1])
    decoder_widths: List[int] = field(default_factory=lambda: [64, 48, 32])
    decoder_blocks: List[int] = field(default_factory=lambda: [2, 1, 0])
    latent_mean: List[float] = field(default_factory=list)
    latent_std: List[float] = field(default_factory=list)
    latent_clamp: float = 6.0

    @staticmethod
    def from_json(j: dict) -> "AutoencoderConfig":
        c = AutoencoderConfig()
        for key in ("latent_channels", "encoder_widths", "encoder_blocks", "decoder_widths",
                    "decoder_blocks", "latent_mean", "latent_std", "latent_clamp"):
            if key in j:
                setattr(c, key, j[key])
        return c


class Autoencoder:
    """AutoencoderImpl: Sequential encoder / decoder, layers named by their index."""

    def __init__(self, config: AutoencoderConfig, params: Dict[str, torch.Tensor]):
        self.c = config
        self.encoder = self._encoder_layers(config)
        self.decoder = self._decoder_layers(config)
        expected = dict(self.parameter_shapes(config))
        missing = [n for n in expected if n not in params]
        if missing:
            raise ValueError(f"autoencoder tensors missing: {missing[:6]}")
        self.p = {n: params[n].to(torch.float32).contiguous() for n in expected}
        self.set_statistics(config.latent_mean, config.latent_std, config.latent_clamp)

    def set_statistics(self, mean: List[float], std: List[float], clamp: float):
        self.c.latent_mean, self.c.latent_std, self.c.latent_clamp = mean, std, clamp
        if not mean:
            self.mean = self.std = None
            return
        self.mean = torch.tensor(mean, dtype=torch.float64).to(torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float64).to(torch.float32).view(1, -1, 1, 1)

    # Layers: ("conv", name, in, out, stride), ("res", name, channels), ("silu",), ("up",),
    # ("shuffle",). Names are the Sequential's indices, as in the checkpoint.
    @staticmethod
    def _encoder_layers(c: AutoencoderConfig):
        layers = []
        ew = c.encoder_widths
        cin = 3
        for s in range(3):
            if s > 0:
                layers.append(("silu",))
            layers.append(("conv", None, cin, ew[s], 2))
            for _ in range(c.encoder_blocks[s]):
                layers.append(("res", None, ew[s]))
            cin = ew[s]
        layers.append(("silu",))
        layers.append(("conv", None, cin, c.latent_channels, 1))
        return [(kind[0], f"encoder.{i}") + tuple(kind[2:]) for i, kind in enumerate(layers)]

    @staticmethod
    def _decoder_layers(c: AutoencoderConfig):
        layers = []
        dw = c.decoder_widths
        layers.append(("conv", None, c.latent_channels, dw[0], 1))
        for s in range(3):
            if s > 0:
                layers.append(("up",))
                layers.append(("conv", None, dw[s - 1], dw[s], 1))
            for _ in range(c.decoder_blocks[s]):
                layers.append(("res", None, dw[s]))
        layers.append(("silu",))
        layers.append(("conv", None, dw[2], 12, 1))
        layers.append(("shuffle",))
        return [(kind[0], f"decoder.{i}") + tuple(kind[2:]) for i, kind in enumerate(layers)]

    @staticmethod
    def parameter_shapes(c: AutoencoderConfig) -> List[Tuple[str, List[int]]]:
        """named_parameters() order: encoder, decoder, then the preview map (prefix "ae.")."""
        out = []
        for layers in (Autoencoder._encoder_layers(c), Autoencoder._decoder_layers(c)):
            for layer in layers:
                if layer[0] == "conv":
                    _, name, cin, cout, _ = layer
                    out += [(f"ae.{name}.weight", [cout, cin, 3, 3]), (f"ae.{name}.bias", [cout])]
                elif layer[0] == "res":
                    _, name, ch = layer
                    for sub in ("a", "b"):
                        out += [(f"ae.{name}.{sub}.weight", [ch, ch, 3, 3]),
                                (f"ae.{name}.{sub}.bias", [ch])]
        out += [("ae.preview.weight", [K_LATENT_FACTOR * K_LATENT_FACTOR * 3, c.latent_channels]),
                ("ae.preview.bias", [K_LATENT_FACTOR * K_LATENT_FACTOR * 3])]
        return out

    @staticmethod
    def random_parameters(c: AutoencoderConfig, seed: int) -> Dict[str, torch.Tensor]:
        """AutoencoderImpl::reset_parameters(seed)."""
        gen = torch.Generator().manual_seed(seed)
        params = {}
        for name, shape in Autoencoder.parameter_shapes(c):
            if name.startswith("ae.preview.") or len(shape) < 2:
                params[name] = torch.zeros(shape, dtype=torch.float32)
                continue
            fan_in = float(math.prod(shape) // shape[0])
            bound = math.sqrt(6.0 / fan_in) * 0.5
            params[name] = torch.rand(shape, generator=gen, dtype=torch.float32).mul(2 * bound).sub(bound)
        for name in params:
            if len(name) > 9 and name.endswith(".b.weight"):
                params[name].mul_(0.1)
        return params

    def _conv(self, name, x, stride):
        return F.conv2d(x, self.p[f"ae.{name}.weight"], self.p[f"ae.{name}.bias"],
                        stride=stride, padding=1)

    def _run(self, layers, x):
        for layer in layers:
            kind = layer[0]
            if kind == "conv":
                x = self._conv(layer[1], x, layer[4])
            elif kind == "res":
                name = layer[1]
                x = x + self._conv(name + ".b", F.silu(self._conv(name + ".a", F.silu(x), 1)), 1)
            elif kind == "silu":
                x = F.silu(x)
            elif kind == "up":
                x = F.interpolate(x, scale_factor=[2.0, 2.0], mode="nearest")
            elif kind == "shuffle":
                x = F.pixel_shuffle(x, 2)
        return x

    def encode(self, rgb: torch.Tensor) -> torch.Tensor:
        raw = K_LATENT_BOUND * torch.tanh(self._run(self.encoder, rgb) / K_LATENT_BOUND)
        if self.mean is None:
            return raw
        return (raw - self.mean) / self.std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents if self.mean is None else latents * self.std + self.mean
        return self._run(self.decoder, z)

    def preview(self, latents: torch.Tensor) -> torch.Tensor:
        blocks = F.linear(latents.permute(0, 2, 3, 1), self.p["ae.preview.weight"],
                          self.p["ae.preview.bias"])
        return F.pixel_shuffle(blocks.permute(0, 3, 1, 2), K_LATENT_FACTOR)


def transfer_detail(decoded, ref_decoded, ref_pixels, tolerance):
    single = decoded.dim() == 3
    x = decoded.unsqueeze(0) if single else decoded
    r = ref_decoded.unsqueeze(0) if ref_decoded.dim() == 3 else ref_decoded
    p = ref_pixels.unsqueeze(0) if ref_pixels.dim() == 3 else ref_pixels
    d = F.avg_pool2d((x - r).abs().mean(1, keepdim=True), 9, 1, 4, ceil_mode=False,
                     count_include_pad=False)
    m = torch.exp(-(d / tolerance).square())
    out = (x + m * (p - r)).clamp(-1, 1)
    return out[0] if single else out


# ------------------------------------------------------------------------------------------
# The model handle (model_handle.cpp): network + schedule (+ autoencoder)
# ------------------------------------------------------------------------------------------

class Model:
    def __init__(self, config: ModelConfig, net: Denoiser, ae: Optional[Autoencoder],
                 source: str):
        self.config = config
        self.net = net
        self.ae = ae
        self.schedule = NoiseSchedule(config.noise_schedule, config.sigma_data)
        self.x0_clamp = ae.c.latent_clamp if ae is not None else 1.0
        self.width = config.width * (K_LATENT_FACTOR if ae else 1)
        self.height = config.height * (K_LATENT_FACTOR if ae else 1)
        self.max_frames = config.max_frames
        self.causal = config.causal
        self.source = source

    @staticmethod
    def load(path: str) -> "Model":
        tensors, meta = load_safetensors(path)
        if "config" not in meta:
            raise ValueError(f"{path}: not a Diffusion Forcing Studio model (no 'config')")
        config = ModelConfig.from_json(json.loads(meta["config"]))
        net = Denoiser(config, tensors)
        ae = None
        if "autoencoder" in meta:
            ae = Autoencoder(AutoencoderConfig.from_json(json.loads(meta["autoencoder"])), tensors)
            if not ae.c.latent_mean:
                raise ValueError(f"{path}: the autoencoder has no latent statistics")
        return Model(config, net, ae, "weights from the file")

    @staticmethod
    def random(preset: str, seed: int = 0) -> "Model":
        """Model::random: the preset's network (and, for latent presets, an untrained
        autoencoder with identity statistics)."""
        config = ModelConfig.preset(preset)
        net = Denoiser(config, denoiser_random_parameters(config, seed))
        ae = None
        if preset.startswith("latent"):
            ac = AutoencoderConfig()
            if preset == "latent-tiny":
                ac = AutoencoderConfig(encoder_widths=[16, 24, 32], encoder_blocks=[0, 1, 1],
                                       decoder_widths=[32, 24, 16], decoder_blocks=[1, 1, 0])
            ae = Autoencoder(ac, Autoencoder.random_parameters(ac, seed))
            ae.set_statistics([0.0] * 8, [1.0] * 8, 6.0)
        return Model(config, net, ae, "random weights")

    def causal_variant(self) -> "Model":
        """cmd_bench.cpp: the same architecture with causal attention, randomly initialised
        (Denoiser(config) runs reset_parameters(0)); the autoencoder is shared."""
        if self.causal:
            return self
        config = replace(self.config, causal=True, name=self.config.name + "-causal")
        net = Denoiser(config, denoiser_random_parameters(config, 0))
        return Model(config, net, self.ae, self.source)


# ------------------------------------------------------------------------------------------
# [6] Denoiser wrapper with KV cache, objective -> x0, history guidance
# ------------------------------------------------------------------------------------------

@dataclass
class WindowHistory:
    known: Optional[torch.Tensor] = None
    clean: Optional[torch.Tensor] = None
    noise: Optional[torch.Tensor] = None


@dataclass
class DenoiseCall:
    x: torch.Tensor
    levels: torch.Tensor
    positions: Optional[torch.Tensor]
    known_prefix: int = 0
    needed_frames: int = 0
    history: WindowHistory = field(default_factory=WindowHistory)


class ModelDenoiser:
    """model_denoiser.cpp: the sampler's view of a model (x0 estimates, KV cache)."""

    def __init__(self, model: Model, kv_cache: bool):
        self.model = model
        self.kv_cache = kv_cache and model.config.causal
        self.cache = KVCache()
        self.cached_prefix = -1
        self.cached_batch = -1
        self.forwards = 0

    def reset(self):
        self.cache.clear()
        self.cached_prefix = -1
        self.cached_batch = -1

    def _call(self, c: DenoiseCall) -> torch.Tensor:
        net = self.model.net
        frames = c.x.size(1)
        self.forwards += 1
        used = frames
        if self.model.config.causal and 0 < c.needed_frames < frames:
            used = c.needed_frames
        positions = c.positions if c.positions is not None else torch.arange(frames, dtype=torch.float32)
        x = c.x[:, 0:used]
        levels = c.levels[:, 0:used]
        prefix = c.known_prefix
        first = 0
        if not self.kv_cache or prefix <= 0 or prefix >= used:
            head = net.forward(x, levels, positions[0:used])
        else:
            if self.cached_prefix != prefix or self.cached_batch != c.x.size(0):
                self.cache.clear()
                net.forward(x[:, 0:prefix], levels[:, 0:prefix], positions[0:prefix], self.cache,
                            append=True)
                self.cached_prefix = prefix
                self.cached_batch = c.x.size(0)
            head = net.forward(x[:, prefix:], levels[:, prefix:], positions[prefix:used], self.cache,
                               append=False)
            first = prefix
        if first == 0 and used == frames:
            return head
        out = torch.zeros(c.x.shape, dtype=torch.float32)
        out[:, first:used].copy_(head)
        return out

    def __call__(self, c: DenoiseCall) -> torch.Tensor:
        # x0_denoiser (denoise.cpp): the objective applied to the prediction.
        m = self.model
        return m.schedule.to_x0(m.config.objective, self._call(c), c.x, c.levels)


@dataclass
class GuidanceSettings:
    mode: str = "none"  # none, vanilla, fractional
    scale: float = 1.0
    fractional_level: float = 0.5


def guidance_variants(g: GuidanceSettings) -> int:
    if g.mode == "none" or g.scale == 1.0:
        return 1
    return 3 if g.mode == "fractional" else 2


def history_guidance(denoise, schedule: NoiseSchedule, g: GuidanceSettings):
    """guidance.cpp: the guided variants as one batched call."""
    if guidance_variants(g) == 1:
        return denoise

    def guided(call: DenoiseCall) -> torch.Tensor:
        history = call.history
        if history.known is None or not bool(history.known.any().item()):
            return denoise(call)
        frames = call.x.size(1)
        history_levels = []
        if g.mode == "fractional":
            history_levels.append(torch.full([frames], g.fractional_level))
        history_levels.append(torch.ones([frames]))
        known = history.known.to(torch.bool)
        known_x = known.view(frames, 1, 1, 1)
        xs, levels = [call.x[0]], [call.levels[0]]
        for lv in history_levels:
            renoised = schedule.add_noise(history.clean.unsqueeze(0), history.noise.unsqueeze(0),
                                          lv.unsqueeze(0)).squeeze(0)
            xs.append(torch.where(known_x, renoised, call.x[0]))
            levels.append(torch.where(known, lv.to(torch.float32), call.levels[0]))
        batched = replace(call, x=torch.stack(xs), levels=torch.stack(levels))
        d = denoise(batched)
        if g.mode == "vanilla":
            combined = d[1] + g.scale * (d[0] - d[1])
        else:
            combined = d[0] + (g.scale - 1.0) * (d[1] - d[2])
        return combined.unsqueeze(0)
    return guided


# ------------------------------------------------------------------------------------------
# [7] The window sampler (sampler.cpp)
# ------------------------------------------------------------------------------------------

GENERATE, KNOWN_USER, KNOWN_GENERATED = 0, 1, 2


@dataclass
class SamplerSettings:
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    eta: float = 0.0
    stabilization_user: float = 0.02
    stabilization_generated: float = 0.02
    guidance: GuidanceSettings = field(default_factory=GuidanceSettings)


def _per_frame(values: List[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).to(torch.float32)


def _frame_mask(flags: List[bool]) -> torch.Tensor:
    return torch.tensor([int(f) for f in flags], dtype=torch.int32).to(torch.bool)


def ddim_step(schedule: NoiseSchedule, frm: float, to: float, eta: float) -> Tuple[float, float, float]:
    """(c_x, c_x0, sigma): DDIM, Song et al. 2021 Eq. 12, as sampler.cpp writes it."""
    if not to < frm:
        return 1.0, 0.0, 0.0
    a_from = schedule.alpha_bar_scalar(frm)
    a_to = schedule.alpha_bar_scalar(to)
    sigma = eta * math.sqrt((1.0 - a_to) / (1.0 - a_from)) * math.sqrt(max(0.0, 1.0 - a_from / a_to))
    c_eps = math.sqrt(max(0.0, 1.0 - a_to - sigma * sigma))
    c_x = c_eps / math.sqrt(1.0 - a_from)
    c_x0 = math.sqrt(a_to) - c_x * math.sqrt(a_from)
    return c_x, c_x0, sigma


def fed_levels(matrix: SchedulingMatrix, row: int, roles: List[int], final: List[bool],
               s: SamplerSettings) -> List[float]:
    fed = []
    for t, role in enumerate(roles):
        if role == KNOWN_USER:
            fed.append(s.stabilization_user)
        elif role == KNOWN_GENERATED:
            fed.append(s.stabilization_generated)
        else:
            fed.append(s.stabilization_generated if final[t] else matrix.at(row, t) / float(matrix.steps))
    return fed


def sample_window(denoise, schedule: NoiseSchedule, content: torch.Tensor, roles: List[int],
                  positions: Optional[torch.Tensor], matrix: SchedulingMatrix, x0_clamp: float,
                  settings: SamplerSettings, generator: torch.Generator,
                  on_final: Optional[Callable] = None, on_step: Optional[Callable] = None):
    frames = len(roles)
    steps = float(matrix.steps)
    model = history_guidance(denoise, schedule, settings.guidance)
    known = [r != GENERATE for r in roles]
    known_prefix = 0
    for t in range(frames):
        if known[t] and known_prefix == t:
            known_prefix += 1
    content = content.to(torch.float32).contiguous()
    positions = positions.to(torch.float32) if positions is not None else torch.arange(frames, dtype=torch.float32)
    known_mask = _frame_mask(known)
    known_mask_x = known_mask.view(frames, 1, 1, 1)

    noise = torch.randn(content.shape, generator=generator, dtype=torch.float32)

    final = [known[t] or matrix.at(0, t) == 0 for t in range(frames)]
    start = [0.0 if known[t] else matrix.at(0, t) / steps for t in range(frames)]
    x = schedule.add_noise(content.unsqueeze(0), noise.unsqueeze(0),
                           _per_frame(start).unsqueeze(0)).squeeze(0)
    for t in range(frames):
        if known[t]:
            x[t].copy_(content[t])
    history_fed = schedule.add_noise(
        content.unsqueeze(0), noise.unsqueeze(0),
        _per_frame(fed_levels(matrix, 0, roles, final, settings)).unsqueeze(0)).squeeze(0)
    history = WindowHistory(known_mask, content, noise)

    forwards = 0
    for m in range(matrix.rows - 1):
        fed_levels_m = _per_frame(fed_levels(matrix, m, roles, final, settings))
        x_fed = x.clone()
        finished_fed = [not known[t] and final[t] for t in range(frames)]
        if any(finished_fed):
            renoised = schedule.add_noise(x.unsqueeze(0), noise.unsqueeze(0),
                                          fed_levels_m.unsqueeze(0)).squeeze(0)
            for t in range(frames):
                if finished_fed[t]:
                    x_fed[t].copy_(renoised[t])

        update = [(1.0, 0.0, 0.0)] * frames
        newly_final = []
        needed = 0
        any_noise = False
        for t in range(frames):
            frm, to = matrix.at(m, t) / steps, matrix.at(m + 1, t) / steps
            if known[t] or final[t] or not to < frm:
                continue
            needed = t + 1
            update[t] = ddim_step(schedule, frm, to, settings.eta)
            any_noise = any_noise or update[t][2] > 0.0
            if to == 0.0:
                newly_final.append(t)

        if ADAPT_THREADS is not None:
            ADAPT_THREADS()  # a busy neighbour: fewer threads (load_adaptive.h)
        call = DenoiseCall(torch.where(known_mask_x, history_fed, x_fed).unsqueeze(0),
                           fed_levels_m.unsqueeze(0), positions, known_prefix, needed, history)
        x0 = model(call)
        forwards += 1
        x0 = x0.to(torch.float32).squeeze(0)
        if not bool(torch.isfinite(x0).all().item()):
            raise RuntimeError(f"the model produced invalid values at step {m + 1}")
        x0 = x0.clamp(-x0_clamp, x0_clamp)

        shape = (frames, 1, 1, 1)
        x_next = (_per_frame([u[0] for u in update]).view(shape) * x +
                  _per_frame([u[1] for u in update]).view(shape) * x0)
        if any_noise:
            x_next = x_next + _per_frame([u[2] for u in update]).view(shape) * torch.randn(
                x.shape, generator=generator, dtype=torch.float32)
        for t in newly_final:
            x_next[t].copy_(x0[t])
        x = torch.where(known_mask_x, x, x_next)
        for t in newly_final:
            final[t] = True
            if on_final is not None:
                on_final(t, x[t])
        if on_step is not None:
            on_step(m + 1, matrix.rows - 1,
                    torch.where(_frame_mask(final).view(frames, 1, 1, 1), x, x0))
    return x, final, forwards


# ------------------------------------------------------------------------------------------
# [8] Rollouts (rollout.cpp)
# ------------------------------------------------------------------------------------------

@dataclass
class TimelineFrame:
    content: Optional[np.ndarray] = None  # uint8 [H, W, 3] at the model's resolution
    pinned: bool = False
    start_level: float = 1.0


@dataclass
class RolloutSettings:
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    context: int = 4
    horizon: int = 4
    seed: int = 0
    kv_cache: bool = True
    detail_transfer: bool = True


@dataclass
class WindowPlan:
    first: int
    frames: List[int]
    known: List[bool]
    matrix: SchedulingMatrix


def frame_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    b = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True))
    return b.permute(2, 0, 1).to(torch.float32).div(127.5).sub(1.0).contiguous()


def tensor_to_frame(value: torch.Tensor) -> np.ndarray:
    b = (value.detach().to(torch.float32).add(1.0).mul(127.5).round().clamp(0, 255)
         .to(torch.uint8).permute(1, 2, 0).contiguous())
    return b.numpy().copy()


class FrameCodec:
    def __init__(self, model: Model):
        self.ae = model.ae

    def latent(self) -> bool:
        return self.ae is not None

    def encode(self, frames: List[np.ndarray]) -> Optional[torch.Tensor]:
        if not frames:
            return None
        x = torch.stack([frame_to_tensor(f) for f in frames])
        if not self.latent():
            return x
        with torch.inference_mode():
            return self.ae.encode(x).to(torch.float32)

    def decode_pixels(self, values: torch.Tensor) -> torch.Tensor:
        if not self.latent():
            return values
        with torch.inference_mode():
            return self.ae.decode(values).clamp(-1, 1).to(torch.float32)

    def decode(self, values: torch.Tensor, references) -> List[np.ndarray]:
        pixels = self.decode_pixels(values)
        out = []
        for i in range(pixels.size(0)):
            ref = references[i] if i < len(references) else None
            if ref is not None and ref[0] is not None:
                with torch.inference_mode():
                    out.append(tensor_to_frame(transfer_detail(pixels[i], ref[0], ref[1],
                                                               K_DETAIL_TOLERANCE)))
            else:
                out.append(tensor_to_frame(pixels[i]))
        return out

    def preview(self, value: torch.Tensor) -> np.ndarray:
        if not self.latent():
            return tensor_to_frame(value)
        with torch.inference_mode():
            return tensor_to_frame(self.ae.preview(value.unsqueeze(0))[0].clamp(-1, 1))


def plan_rollout(model: Model, timeline: List[TimelineFrame], s: RolloutSettings) -> List[WindowPlan]:
    if s.horizon < 1 or s.context < 0 or s.context + s.horizon > model.max_frames:
        raise ValueError("context + horizon must fit the model's window")
    n = len(timeline)
    plans = []
    nxt = 0
    while True:
        while nxt < n and timeline[nxt].pinned:
            nxt += 1
        if nxt >= n:
            break
        first = max(0, nxt - s.context)
        frames = list(range(first, nxt))
        known = [True] * len(frames)
        generated = 0
        i = nxt
        while i < n and generated < s.horizon and len(frames) < model.max_frames:
            frames.append(i)
            known.append(timeline[i].pinned)
            if not timeline[i].pinned:
                generated += 1
            i += 1
        if not model.causal:
            j = i
            while j < n and len(frames) < model.max_frames and j - first < model.max_frames:
                if timeline[j].pinned:
                    frames.append(j)
                    known.append(True)
                j += 1
        start = [0.0 if known[k] else timeline[frames[k]].start_level for k in range(len(frames))]
        plans.append(WindowPlan(first, frames, known, build_schedule(s.sampler.schedule, start)))
        nxt = i
    return plans


@dataclass
class RolloutResult:
    frames: Dict[int, np.ndarray]  # every timeline frame emitted, by index
    forwards: int
    seconds: float
    windows: int


def run_rollout(model: Model, timeline: List[TimelineFrame], s: RolloutSettings,
                want_preview: bool = False,
                on_frame: Optional[Callable[[int, np.ndarray], None]] = None) -> RolloutResult:
    started = time.perf_counter()
    plans = plan_rollout(model, timeline, s)
    n = len(timeline)
    cfg = model.config
    codec = FrameCodec(model)
    generated: Dict[int, np.ndarray] = {}
    generated_latent: Dict[int, torch.Tensor] = {}
    encoded: Dict[int, torch.Tensor] = {}
    emitted: Dict[int, np.ndarray] = {}
    state = {"next_emit": 0}

    def emit_ready():
        while state["next_emit"] < n:
            i = state["next_emit"]
            f = timeline[i]
            if f.pinned:
                frame = f.content
            else:
                if i not in generated:
                    break
                frame = generated[i]
            emitted[i] = frame
            if on_frame is not None:
                on_frame(i, frame)
            state["next_emit"] += 1
    emit_ready()

    pinned_indices = [i for i in range(n) if timeline[i].pinned] if (
        codec.latent() and s.detail_transfer) else []
    references: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}

    def reference_for(index: int):
        if not pinned_indices:
            return None
        pos = bisect.bisect_left(pinned_indices, index)
        nearest = pinned_indices[-1] if pos == len(pinned_indices) else pinned_indices[pos]
        if pos != 0 and (pos == len(pinned_indices) or
                         index - pinned_indices[pos - 1] <= pinned_indices[pos] - index):
            nearest = pinned_indices[pos - 1]
        if nearest in references:
            return references[nearest]
        content = timeline[nearest].content
        latent = encoded[nearest].unsqueeze(0) if nearest in encoded else codec.encode([content])
        ref = (codec.decode_pixels(latent)[0], frame_to_tensor(content))
        if len(references) >= 4:
            del references[min(references)]
        references[nearest] = ref
        return ref

    generator = torch.Generator().manual_seed(s.seed)
    denoiser = ModelDenoiser(model, s.kv_cache)

    for w, plan in enumerate(plans):
        frames = len(plan.frames)
        content = torch.zeros(frames, cfg.channels, cfg.height, cfg.width)
        to_encode = []
        for k in range(frames):
            index = plan.frames[k]
            f = timeline[index]
            needs = f.pinned or (not plan.known[k] and f.content is not None and f.start_level < 1.0)
            if needs and index not in encoded:
                to_encode.append(index)
        if to_encode:
            values = codec.encode([timeline[i].content for i in to_encode])
            for i, index in enumerate(to_encode):
                encoded[index] = values[i]
        roles = []
        positions = []
        for k in range(frames):
            index = plan.frames[k]
            f = timeline[index]
            positions.append(float(index - plan.first))
            if f.pinned:
                roles.append(KNOWN_USER)
                content[k].copy_(encoded[index])
            elif plan.known[k]:
                roles.append(KNOWN_GENERATED)
                content[k].copy_(generated_latent[index] if codec.latent()
                                 else frame_to_tensor(generated[index]))
            else:
                roles.append(GENERATE)
                if f.content is not None and f.start_level < 1.0:
                    content[k].copy_(encoded[index])
        positions_t = torch.tensor(positions, dtype=torch.float32)

        pending: List[Tuple[int, torch.Tensor]] = []

        def flush():
            if not pending:
                return
            values = [v for _, v in pending]
            refs = [reference_for(plan.frames[k]) for k, _ in pending]
            decoded = codec.decode(torch.stack(values), refs)
            for i, (k, v) in enumerate(pending):
                index = plan.frames[k]
                if codec.latent():
                    generated_latent[index] = v
                generated[index] = decoded[i]
            pending.clear()
            emit_ready()

        def on_final(k, value):
            if roles[k] != GENERATE:
                return
            pending.append((k, value.clone()))

        def on_step(row, rows, x0):
            flush()
            if want_preview:
                for k in range(frames):
                    if roles[k] == GENERATE:
                        codec.preview(x0[k])

        denoiser.reset()
        x, final, _ = sample_window(denoiser, model.schedule, content, roles, positions_t,
                                    plan.matrix, model.x0_clamp, s.sampler, generator,
                                    on_final, on_step)
        flush()
        for k in range(frames):
            if roles[k] == GENERATE and plan.frames[k] not in generated:
                pending.append((k, x[k].clone()))
        flush()
        keep_from = plans[w + 1].first if w + 1 < len(plans) else n
        for index in sorted(generated):
            if index < keep_from and index < state["next_emit"]:
                generated_latent.pop(index, None)
                del generated[index]
        for index in sorted(encoded):
            if index < keep_from:
                del encoded[index]
    return RolloutResult(emitted, denoiser.forwards, time.perf_counter() - started, len(plans))


def extend_timeline(clip_frames: List[np.ndarray], new_frames: int, context: int):
    """`dforce extend` (project/timeline.cpp extend_layout + generation_job.cpp
    plan_generation): the clip's frames pinned, `new_frames` from noise after them; the rollout
    starts `context` frames before the first generated one. Returns (timeline, start)."""
    k = len(clip_frames)
    start = max(0, k - context)
    timeline = [TimelineFrame(content=f, pinned=True) for f in clip_frames[start:]]
    timeline += [TimelineFrame() for _ in range(new_frames)]
    return timeline, start


# ------------------------------------------------------------------------------------------
# [9] Threads (runtime.cpp) and the command line
# ------------------------------------------------------------------------------------------

def _openblas_library():
    """The OpenBLAS that LibTorch's libblas.so.3 resolved to (Debian: openblas-pthread)."""
    for line in open("/proc/self/maps"):
        parts = line.split()
        if len(parts) >= 6 and "libopenblas" in parts[-1]:
            try:
                return ctypes.CDLL(parts[-1])
            except OSError:
                continue
    return None


def openblas_threads() -> Optional[int]:
    lib = _openblas_library()
    if lib is None or not hasattr(lib, "openblas_get_num_threads"):
        return None
    return int(lib.openblas_get_num_threads())


def set_openblas_threads(n: int) -> bool:
    """configure_threads() in runtime.cpp calls openblas_set_num_threads(1) (unless
    $DFS_BLAS_THREADS says otherwise); a plain Python user gets OpenBLAS's own default."""
    lib = _openblas_library()
    if lib is None or not hasattr(lib, "openblas_set_num_threads"):
        return False
    lib.openblas_set_num_threads(ctypes.c_int(n))
    return True


class LoadAdaptiveThreads:
    """detail::adapt_threads_to_load() (runtime.cpp): with the engine's default thread count,
    before every model call, at most every 200 ms, use the cores other processes leave free."""

    def __init__(self, max_threads: int):
        self.max_threads = max_threads
        self.last_time = None
        self.last_total = -1
        self.last_busy = 0
        self.last_self = 0

    def __call__(self):
        if self.max_threads < 2:
            return
        now = time.monotonic()
        if self.last_total >= 0 and now - self.last_time < 0.2:
            return
        with open("/proc/stat") as f:
            fields = f.readline().split()
        if fields[0] != "cpu":
            return
        v = [int(x) for x in fields[1:9]]
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        total = busy + v[3] + v[4]
        with open("/proc/self/stat") as f:
            line = f.read()
        rest = line[line.rfind(")") + 2:].split()
        me = int(rest[11]) + int(rest[12])  # utime, stime (fields 14, 15)
        if self.last_total >= 0 and total > self.last_total:
            cpus = max(1, os.cpu_count() or 1)
            span = float(total - self.last_total)
            others = max(0.0, float((busy - self.last_busy) - (me - self.last_self))) / span * cpus
            want = min(max(int(cpus - others + 0.5), 1), self.max_threads)
            if want != torch.get_num_threads():
                torch.set_num_threads(want)
        self.last_time, self.last_total, self.last_busy, self.last_self = now, total, busy, me


# Set by configure_threads(); sample_window() calls it before every model call.
ADAPT_THREADS: Optional[LoadAdaptiveThreads] = None


def read_png_dir(path: str) -> List[np.ndarray]:
    from PIL import Image
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(".png"))
    return [np.asarray(Image.open(os.path.join(path, n)).convert("RGB"), dtype=np.uint8)
            for n in names]


def write_frames(out_dir: str, frames: Dict[int, np.ndarray], raw: Optional[str] = None):
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    for index in sorted(frames):
        Image.fromarray(frames[index]).save(os.path.join(out_dir, f"frame_{index:06d}.png"))
    if raw:
        with open(raw, "wb") as f:
            for index in sorted(frames):
                f.write(frames[index].tobytes())


def add_sampling_options(p: argparse.ArgumentParser):
    p.add_argument("--model", default=None, help="model .safetensors (default: models/demo.safetensors)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--schedule", default="pyramid")
    p.add_argument("--uncertainty", type=float, default=1.0)
    p.add_argument("--ar-step", type=int, default=2)
    p.add_argument("--block", type=int, default=2)
    p.add_argument("--eta", type=float, default=0.0)
    p.add_argument("--stabilization", type=float, default=0.02)
    p.add_argument("--stabilization-generated", type=float, default=0.02)
    p.add_argument("--guidance", default="none", choices=["none", "vanilla", "fractional"])
    p.add_argument("--guidance-scale", type=float, default=1.0)
    p.add_argument("--guidance-fraction", type=float, default=0.5)
    p.add_argument("--horizon", type=int, default=4)
    p.add_argument("--context", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--detail-transfer", default="on", choices=["on", "off"])
    p.add_argument("--no-kv-cache", action="store_true")


def rollout_settings_from(a) -> RolloutSettings:
    return RolloutSettings(
        sampler=SamplerSettings(
            schedule=ScheduleSettings(a.schedule, a.steps, a.uncertainty, a.ar_step, a.block),
            eta=a.eta, stabilization_user=a.stabilization,
            stabilization_generated=a.stabilization_generated,
            guidance=GuidanceSettings(a.guidance, a.guidance_scale, a.guidance_fraction)),
        context=a.context, horizon=a.horizon, seed=a.seed, kv_cache=not a.no_kv_cache,
        detail_transfer=a.detail_transfer == "on")


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_model() -> str:
    return os.environ.get("DFS_MODEL") or os.path.join(repo_root(), "models", "demo.safetensors")


def configure_threads(threads: int, match_engine: bool) -> Optional[LoadAdaptiveThreads]:
    """threads <= 0: the C++ default (all cores). match_engine: OpenBLAS on one thread and, when
    the count was not chosen, the engine's load-following thread count."""
    global ADAPT_THREADS
    ADAPT_THREADS = None
    chosen = threads > 0
    n = threads if chosen else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    if match_engine:
        set_openblas_threads(int(os.environ.get("DFS_BLAS_THREADS", "1")))
        if not chosen and os.environ.get("DFS_ADAPTIVE_THREADS", "1") != "0":
            ADAPT_THREADS = LoadAdaptiveThreads(n)
    return ADAPT_THREADS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extend", help="extend a clip (PNG frames at the model's size) like "
                                       "`dforce extend --range all --scale 1`")
    ex.add_argument("--clip-frames", required=True,
                    help="folder of the clip's frames as PNGs at the model's resolution, "
                         "sorted by name (e.g. the pinned frames of a `dforce extend` PNG output)")
    ex.add_argument("--source-frames", type=int, default=0, help="use only the last K frames")
    ex.add_argument("-n", "--frames", type=int, required=True)
    ex.add_argument("-o", "--output", required=True, help="folder for frame_<index>.png")
    ex.add_argument("--raw", default=None, help="also write all frames as raw RGB24 to this file")
    ex.add_argument("--threads", type=int, default=0)
    ex.add_argument("--match-engine-threads", action="store_true")
    add_sampling_options(ex)
    info = sub.add_parser("info", help="print a model file's config")
    info.add_argument("--model", default=None)
    a = ap.parse_args(argv)

    if a.cmd == "info":
        m = Model.load(a.model or default_model())
        print(json.dumps(m.config.__dict__, indent=1))
        print("latent" if m.ae else "pixel", m.width, "x", m.height)
        return 0

    configure_threads(a.threads, a.match_engine_threads)
    model = Model.load(a.model or default_model())
    clip = read_png_dir(a.clip_frames)
    if a.source_frames > 0:
        clip = clip[-a.source_frames:]
    for f in clip:
        if f.shape != (model.height, model.width, 3):
            raise SystemExit(f"clip frames must be {model.width}x{model.height} "
                             f"(got {f.shape[1]}x{f.shape[0]}); resizing is not ported")
    settings = rollout_settings_from(a)
    if settings.context + settings.horizon > model.max_frames:  # fit_window_to_model
        settings.horizon = max(1, model.max_frames - settings.context)
        if settings.context + settings.horizon > model.max_frames:
            settings.context = max(0, model.max_frames - settings.horizon)
    timeline, start = extend_timeline(clip, a.frames, settings.context)
    with torch.inference_mode():
        result = run_rollout(model, timeline, settings)
    frames = {start + i: f for i, f in result.frames.items()}
    for i in range(start):  # the clip's frames before the rollout, as --range all emits them
        frames[i] = clip[i]
    write_frames(a.output, frames, a.raw)
    print(f"dfs_eager: wrote {a.output}: {len(frames)} frames ({a.frames} generated), "
          f"{result.seconds:.2f} s, {a.frames / result.seconds:.2f} generated frames/s, "
          f"{result.forwards} model forwards, torch threads {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
