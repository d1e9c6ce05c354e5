"""How long a round would take on this machine: `evoq plan`'s FLOP-count model (app/quality/cost.py)
for the serving version's parameter count, this process's device and a round's config."""

from __future__ import annotations

import json
import math
import os
import struct
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.quality.cost import CostAssumptions, estimate_round
from app.quality.results import MAX_NEW_TOKENS

# Rounds estimated above this ask the console to confirm before they start.
WARN_SECONDS = 3600.0
# A hub id (no local folder) is assumed to be a 7B model, the paper's size.
DEFAULT_PARAMS = 7e9
# Dense bf16 peak FLOP/s of known GPUs; others get the A100's, said so in the device text.
GPU_PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


@dataclass(frozen=True)
class Device:
    """Where rounds run: a name for people, how many of it, and the peak FLOP/s assumed."""

    label: str
    count: int
    peak_flops: float


def count_parameters(folder: str | Path) -> float | None:
    """Parameters of the safetensors files in `folder`, read from their headers only; None
    when there are none (a hub id, or another format)."""
    files = sorted(Path(folder).glob("*.safetensors")) if Path(folder).is_dir() else []
    total = 0
    for path in files:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header: dict[str, Any] = json.loads(fh.read(length))
        total += sum(
            math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__"
        )
    return float(total) if files else None


@lru_cache(maxsize=1)
def measured_cpu_flops() -> float:
    """Float32 matmul FLOP/s of this process's CPU threads, measured once (about 0.1 s): the
    CPU's 'peak' in the estimate, since CPUs have no data-sheet number for this work."""
    import torch

    n = 384
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    reps, start = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - start < 0.05:
        torch.mm(a, b)
        reps += 1
    return 2.0 * n**3 * reps / (time.perf_counter() - start)


def this_device(setting: str) -> Device:
    """The device rounds use under EVOQ_DEVICE (auto: CUDA when present)."""
    import torch

    if setting != "cpu" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        known = next((peak for key, peak in GPU_PEAKS.items() if key in name), None)
        count = torch.cuda.device_count()
        peak = known or CostAssumptions().gpu_peak_flops
        note = "" if known else ", peak assumed as an A100's"
        return Device(f"{count}x {name} ({peak:.3g} FLOP/s bf16{note})", count, peak)
    flops = measured_cpu_flops()
    threads = torch.get_num_threads()
    return Device(
        f"cpu ({threads} thread(s) of {os.cpu_count()} cores, {flops:.3g} FLOP/s float32 "
        "matmul measured)",
        1,
        flops,
    )


def round_estimate(
    config: Any,
    *,
    model_params: float,
    device: Device,
    prefix_sharing: bool,
    reasoning: bool = True,
) -> dict[str, Any]:
    """The estimate for a RoundConfigIn: {"seconds", "stages": [{"stage", "seconds"}],
    "device", "warning", "model_params"}; a warning above WARN_SECONDS. `reasoning`: the
    model answers after a monologue (hundreds of tokens per vote and rollout), else at once."""
    defaults = CostAssumptions()
    vote_tokens = defaults.vote_answer_tokens
    score_tokens = defaults.score_answer_tokens
    if not reasoning:
        vote_tokens = MAX_NEW_TOKENS[("compare", False)]
        score_tokens = MAX_NEW_TOKENS[("score", False)]
    assumptions = CostAssumptions(
        gpu_peak_flops=device.peak_flops,
        prefix_sharing=prefix_sharing,
        holdout_fraction=config.holdout_fraction,
        vote_answer_tokens=vote_tokens,
        score_answer_tokens=config.max_completion_length or score_tokens,
    )
    stages = estimate_round(
        model_params=model_params,
        gpus=device.count,
        pairs=config.pairs,
        votes=config.votes,
        samples=config.samples,
        vote_mode=config.vote_mode,
        assumptions=assumptions,
    )
    # The cost model trains one pass over the training pairs; max_steps may stop sooner.
    pass_pairs = config.pairs * (1.0 - config.holdout_fraction)
    trained = pass_pairs
    if config.max_steps is not None:
        trained = min(pass_pairs, float(config.max_steps * config.pairs_per_step))
    share = trained / pass_pairs if pass_pairs > 0 else 1.0
    out = [
        {"stage": s.stage, "seconds": s.seconds * (share if s.stage == "train" else 1.0)}
        for s in stages
    ]
    total = sum(s["seconds"] for s in out)
    warning = None
    if total > WARN_SECONDS:
        warning = (
            f"This round is estimated at {total / 3600:.1f} hours on {device.label}; "
            "shrink pairs, votes, samples or max_steps for this machine, or confirm."
        )
    return {
        "seconds": total,
        "stages": out,
        "device": device.label,
        "warning": warning,
        "model_params": model_params,
    }
