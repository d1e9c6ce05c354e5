"""How a round's cost grows: voting time vs pairs and vs K (sampled vs logits), GRPO step time vs G.

Tiny random model on CPU, one thread, answer-only prompts, in this process (no services); then
reasoning votes vs K on the reasoning fixture (builtin:tiny-reasoning), whose answers run to
hundreds of tokens, with the mean tokens per vote (what `evoq plan --vote-tokens` takes). Prints
seconds per pair vote and per GRPO step, and the fitted growth: a linear fit (seconds per unit,
fixed cost) and the log-log exponent (1 = linear, 0 = flat). Goal: linear in pairs and in K for
sampled votes, flat in K for logits votes. These are the numbers `evoq plan` stands beside.

    OMP_NUM_THREADS=1 python benchmarks/bench_round_cost.py [--pairs 100,200,400,800]
        [--ks 1,8,32] [--gs 2,4,8] [--k-pairs 16] [--vote-k 4] [--reasoning-ks 1,2,4]
        [--reasoning-pairs 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from app.demo.tiny import build_tiny_model  # noqa: E402
from app.quality.grpo import GRPORoundConfig, train_grpo  # noqa: E402
from app.quality.loading import load_model  # noqa: E402
from app.quality.pairs import Pair  # noqa: E402
from app.quality.voting import VoteConfig, VoteResult, vote_chunk  # noqa: E402

N_IMAGES = 64


def _images(seed: int = 0) -> dict[int, Image.Image]:
    rng = np.random.default_rng(seed)
    return {
        k: Image.fromarray((rng.random((56, 56, 3)) * 255 * rng.random()).astype(np.uint8))
        for k in range(N_IMAGES)
    }


def _pairs(n: int, seed: int = 1) -> list[Pair]:
    rng = np.random.default_rng(seed)
    return [Pair(*map(int, rng.choice(N_IMAGES, 2, replace=False)), False) for _ in range(n)]


def _vote_seconds(model, images, n_pairs: int, mode: str, k: int) -> float:
    pairs = _pairs(n_pairs)
    config = VoteConfig(k=k, mode=mode, chunk_size=n_pairs, reasoning=False)
    start = time.perf_counter()
    vote_chunk(model, pairs, images.__getitem__, config, seed=0)
    return time.perf_counter() - start


def _reasoning_votes(images, ks: list[int], n_pairs: int, work: Path) -> None:
    """Sampled reasoning votes on the reasoning fixture: seconds per pair and tokens per vote."""
    import app.demo.builtins  # noqa: F401  (registers builtin:tiny-reasoning)

    model = load_model("builtin:tiny-reasoning", device="cpu", cache_dir=work / "cache")
    pairs = [(images[p.a], images[p.b]) for p in _pairs(n_pairs)]
    model.compare(pairs[:1], mode="sampled", k=1, seed=0)  # warm-up
    print(f"\nreasoning votes vs K (builtin:tiny-reasoning, {n_pairs} pairs):")
    print("| K | s per pair | tokens per vote |\n|---|---|---|")
    secs = []
    for k in ks:
        start = time.perf_counter()
        results = model.compare(pairs, mode="sampled", k=k, seed=0)
        secs.append(time.perf_counter() - start)
        tokens = sum(r.tokens or 0 for r in results) / (k * n_pairs)
        print(f"| {k} | {secs[-1] / n_pairs:.3f} | {tokens:.0f} |")
    if len(ks) > 1:
        print(f"fit in K, reasoning: {_fit(ks, secs)}")


def _grpo_step_seconds(model_dir: Path, images, g: int, steps: int, work: Path) -> float:
    votes = [VoteResult(p.a, p.b, 1, 0, 0, 1.0) for p in _pairs(8)]
    config = GRPORoundConfig(
        num_generations=g, pairs_per_step=1, max_steps=steps, learning_rate=1e-4,
        reasoning=False, max_completion_length=8, device="cpu",
    )  # fmt: skip
    start = time.perf_counter()
    result = train_grpo(model_dir, votes, images.__getitem__, config, work / f"g{g}")
    wall = time.perf_counter() - start
    step = result.metrics.get("step_time_s_avg", float("nan"))
    return step if np.isfinite(step) else wall / steps


def _fit(x: list[float], y: list[float]) -> str:
    slope, intercept = np.polyfit(x, y, 1)
    exponent = np.polyfit(np.log(x), np.log(y), 1)[0]
    return f"{slope:.4g} s per unit + {intercept:.3g} s fixed; log-log exponent {exponent:.2f}"


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=_ints, default=[100, 200, 400, 800])
    parser.add_argument("--vote-k", type=int, default=4, help="K of the pairs sweep (sampled)")
    parser.add_argument("--ks", type=_ints, default=[1, 8, 32])
    parser.add_argument("--k-pairs", type=int, default=16, help="pairs of the K sweep")
    parser.add_argument("--gs", type=_ints, default=[2, 4, 8])
    parser.add_argument("--grpo-steps", type=int, default=2)
    parser.add_argument("--reasoning-ks", type=_ints, default=[1, 2, 4])
    parser.add_argument("--reasoning-pairs", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    images = _images()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny")
        model = load_model(str(model_dir), device="cpu", reasoning=False)
        _vote_seconds(model, images, 2, "sampled", 2)  # warm-up

        print(f"\nvoting vs pairs (sampled, K={args.vote_k}):")
        print("| pairs | seconds | s per pair |\n|---|---|---|")
        secs = [_vote_seconds(model, images, n, "sampled", args.vote_k) for n in args.pairs]
        for n, s in zip(args.pairs, secs, strict=True):
            print(f"| {n} | {s:.2f} | {s / n:.4f} |")
        print(f"fit in pairs: {_fit(args.pairs, secs)}")

        print(f"\nvoting vs K ({args.k_pairs} pairs):")
        print("| K | sampled s per pair | logits s per pair |\n|---|---|---|")
        per_mode = {m: [] for m in ("sampled", "logits")}
        for k in args.ks:
            for mode in per_mode:
                per_mode[mode].append(_vote_seconds(model, images, args.k_pairs, mode, k))
            s, lg = per_mode["sampled"][-1], per_mode["logits"][-1]
            print(f"| {k} | {s / args.k_pairs:.4f} | {lg / args.k_pairs:.4f} |")
        for mode, values in per_mode.items():
            print(f"fit in K, {mode}: {_fit(args.ks, values)}")

        print(f"\nGRPO step vs G (1 pair per step, {args.grpo_steps} steps):")
        print("| G | s per step |\n|---|---|")
        steps = [
            _grpo_step_seconds(model_dir, images, g, args.grpo_steps, Path(tmp)) for g in args.gs
        ]
        for g, s in zip(args.gs, steps, strict=True):
            print(f"| {g} | {s:.2f} |")
        print(f"fit in G: {_fit(args.gs, steps)}")
        _reasoning_votes(images, args.reasoning_ks, args.reasoning_pairs, Path(tmp))


if __name__ == "__main__":
    main()
