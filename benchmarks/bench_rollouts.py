"""Rollouts and votes of reasoning length: hf (transformers generate) against vllm.

Times GRPO steps (same prompts, same G, same completion length) split into generation, weight
sync, scoring (rewards, old and reference log-probs) and update, and sampled reasoning votes
(engine start apart), at two sizes of the reasoning fixture's layout with random weights
(see SIZES; random answers run to the token limit on both backends alike). vLLM runs from
.venv-vllm (its GRPO steps in a child process of that interpreter, its votes in its engine
process); without it the vllm column says unavailable. Prints markdown tables and hf/vllm ratios. CPU times are
this machine's; the ratios are the claim.

    OMP_NUM_THREADS=1 python benchmarks/bench_rollouts.py [--tokens 128] [--generations 4]
        [--steps 3] [--k 4] [--sizes fixture-hd64,512x4] [--backends hf,vllm]
    python benchmarks/bench_rollouts.py --measure-lengths   # the fixture's mean lengths
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
# Images are 56 x 56 (4 image tokens); the bound keeps vLLM's context (prompt at the bound plus
# the completion) inside the fixture's 4096 positions (Qwen's own bound would ask for 16k).
PIXELS = 112 * 112
# Two sizes of the reasoning fixture's layout (Qwen vocabulary and files, random weights):
# vLLM-CPU's attention needs head_dim 64 (the fixture's own 16 fails: "Unsupported CPU
# attention configuration"), so the small one is the CI colocate test's (hidden 128, 2 heads).
SIZES = {
    "fixture-hd64": dict(hidden_size=128, num_attention_heads=2, num_key_value_heads=2,
                         vision_hidden_size=128, vision_num_heads=2),
    "512x4": dict(hidden_size=512, intermediate_size=1024, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=4),
}  # fmt: skip


def _images(count: int, seed: int = 0) -> list[Any]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [
        Image.fromarray((np.ones((56, 56, 3)) * rng.random() * 255).astype("uint8"))
        for _ in range(count)
    ]


def _models(work: Path, sizes: list[str]) -> dict[str, Path]:
    import app.demo.builtins  # noqa: F401  (registers builtin:tiny-reasoning)
    from app.demo.tiny import build_tiny_model
    from app.quality.builtins import resolve_model_source

    out = {}
    for size in sizes:
        if size == "fixture":  # the prior-trained builtin (hf only: head_dim 16)
            out[size] = Path(resolve_model_source("builtin:tiny-reasoning", work / "cache"))
        else:
            out[size] = build_tiny_model(work / size, vocab="qwen", reasoning=True, **SIZES[size])
    return out


def grpo_child(model: str, backend: str, tokens: int, generations: int, steps: int) -> dict:
    """GRPO steps in this interpreter: seconds per step by phase (the first step dropped)."""
    import torch
    from grpo_phases import split_step, timed_phases

    from app.quality import vllm_rollouts
    from app.quality.grpo import GRPORoundConfig, train_grpo
    from app.quality.voting import VoteResult

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    images = _images(8)
    votes = [VoteResult(i, (i + 1) % 8, 3, 1, 0, 0.75) for i in range(8)]
    config = GRPORoundConfig(
        num_generations=generations, pairs_per_step=1, max_steps=steps, learning_rate=1e-5,
        reasoning=True, max_completion_length=tokens, mask_truncated_completions=False,
        device="cpu", rollout_backend=backend, max_pixels=PIXELS,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, timed_phases() as totals:
        start = time.perf_counter()
        result = train_grpo(model, votes, images.__getitem__, config, Path(tmp) / "out")
        wall = time.perf_counter() - start
    per_step = result.metrics["per_step"]
    # Phase totals cover every step; scale them to the steps kept (all but the first).
    times = per_step["step_time_s"]
    kept = times[1:] or times
    share = sum(kept) / sum(times)
    parts = split_step({k: v * share for k, v in totals.items()}, statistics.mean(kept), len(kept))
    return {
        "backend": backend,
        "vllm": vllm_rollouts.vllm_version() if backend == "vllm" else None,
        "step_s": statistics.mean(kept),
        "parts": parts,
        "completion_length": statistics.mean(per_step["completion_length"]),
        "wall_s": wall,
    }


def _grpo(model: Path, backend: str, args) -> dict | None:
    python = VLLM_PYTHON if backend == "vllm" else Path(sys.executable)
    if not python.exists():
        return None
    command = [str(python), __file__, "--grpo-child", str(model), backend]
    command += [f"--tokens={args.tokens}", f"--generations={args.generations}"]
    command += [f"--steps={args.steps}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VLLM_CPU_KVCACHE_SPACE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        print(done.stderr[-3000:], file=sys.stderr)
        return None
    return json.loads(lines[-1])


def _votes(model: Path, backend: str, args) -> dict | None:
    """Sampled reasoning votes: K per pair, `tokens` at most each; engine start apart."""
    from app.quality.loading import load_model
    from app.quality.vllm_backend import load_vllm_model

    if backend == "vllm" and not VLLM_PYTHON.exists():
        return None
    images = _images(8, seed=1)
    pairs = [(images[i], images[i + 4]) for i in range(4)]
    start = time.perf_counter()
    if backend == "vllm":
        quality = load_vllm_model(
            str(model),
            python=VLLM_PYTHON,
            max_new_tokens=args.tokens,
            reasoning=True,
            max_pixels=PIXELS,
        )
    else:
        quality = load_model(str(model), device="cpu", reasoning=True, max_pixels=PIXELS)
    loaded = time.perf_counter() - start
    try:
        quality.compare(pairs[:1], mode="sampled", k=1, max_new_tokens=4, seed=0)  # warm-up
        start = time.perf_counter()
        results = quality.compare(
            pairs, mode="sampled", k=args.k, max_new_tokens=args.tokens, seed=0
        )
        seconds = time.perf_counter() - start
    finally:
        quality.close()
    tokens = sum(r.tokens or 0 for r in results)
    return {"load_s": loaded, "seconds": seconds, "tokens": tokens}


def measure_lengths(samples: int = 8) -> dict[str, float]:
    """Mean completion tokens of builtin:tiny-reasoning's sampled reasoning answers to the
    score prompt (8 images x `samples`) and the compare prompt (8 pairs x K=`samples`)."""
    from app.quality.loading import load_model

    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(str(_models(Path(tmp), ["fixture"])["fixture"]), device="cpu")
        images = _images(8)
        scores = model.score(images, mode="sampled", n=samples, seed=0)
        pairs = [(images[i], images[(i + 1) % 8]) for i in range(8)]
        votes = model.compare(pairs, mode="sampled", k=samples, seed=0)
    return {
        "score_tokens_mean": sum(r.tokens for r in scores) / (8 * samples),
        "compare_tokens_mean": sum(r.tokens for r in votes) / (8 * samples),
        "score_valid": sum(r.valid for r in scores) / (8 * samples),
        "compare_invalid": sum(r.invalid for r in votes) / (8 * samples),
    }


def _cell(value: float | None, fmt: str = ".2f") -> str:
    return "unavailable" if value is None else format(value, fmt)


def _ratio(hf: float | None, vllm: float | None) -> str:
    return "-" if not hf or not vllm else f"{hf / vllm:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128, help="completion tokens at most")
    parser.add_argument("--generations", type=int, default=4, help="GRPO G (1 pair per step)")
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps (first one dropped)")
    parser.add_argument("--k", type=int, default=4, help="votes per pair (4 pairs)")
    parser.add_argument("--sizes", default="fixture-hd64,512x4")
    parser.add_argument("--backends", default="hf,vllm")
    parser.add_argument("--skip-grpo", action="store_true")
    parser.add_argument("--skip-votes", action="store_true")
    parser.add_argument("--measure-lengths", action="store_true")
    parser.add_argument("--grpo-child", nargs=2, metavar=("MODEL", "BACKEND"))
    args = parser.parse_args()
    if args.grpo_child:
        model, backend = args.grpo_child
        print(json.dumps(grpo_child(model, backend, args.tokens, args.generations, args.steps)))
        return
    if args.measure_lengths:
        print(json.dumps(measure_lengths()))
        return
    backends = args.backends.split(",")
    if "vllm" in backends and not VLLM_PYTHON.exists():
        print(f"vllm column unavailable: {VLLM_PYTHON} missing (scripts/setup-vllm)")
    with tempfile.TemporaryDirectory() as tmp:
        models = _models(Path(tmp), args.sizes.split(","))
        grpo = {} if args.skip_grpo else {
            (s, b): _grpo(m, b, args) for s, m in models.items() for b in backends
        }  # fmt: skip
        votes = {} if args.skip_votes else {
            (s, b): _votes(m, b, args) for s, m in models.items() for b in backends
        }  # fmt: skip
    print(f"\nGRPO steps: G={args.generations}, 1 pair (2 images) per step, completions of at "
          f"most {args.tokens} tokens; seconds per step (mean of steps 2..{args.steps})")  # fmt: skip
    print("| size | backend | mean length | generation | sync | scoring | update | step |")
    print("|---|---|---|---|---|---|---|---|")
    for (size, backend), r in grpo.items():
        if r is None:
            print(f"| {size} | {backend} | unavailable |||||")
            continue
        p = r["parts"]
        print(f"| {size} | {backend} | {r['completion_length']:.0f} | {p['generation']:.2f} | "
              f"{p['sync']:.2f} | {p['scoring']:.2f} | {p['update']:.2f} | {r['step_s']:.2f} |")  # fmt: skip
    for size in models:
        hf, vl = grpo.get((size, "hf")), grpo.get((size, "vllm"))
        if hf and vl:
            print(f"{size}: hf/vllm generation {_ratio(hf['parts']['generation'], vl['parts']['generation'])}, "
                  f"step {_ratio(hf['step_s'], vl['step_s'])}")  # fmt: skip
    print(f"\nsampled reasoning votes: 4 pairs x K={args.k}, at most {args.tokens} tokens each")
    print("| size | backend | load s | vote s | tokens | tokens/s |\n|---|---|---|---|---|---|")
    for (size, backend), r in votes.items():
        if r is None:
            print(f"| {size} | {backend} | unavailable ||||")
            continue
        print(f"| {size} | {backend} | {r['load_s']:.1f} | {r['seconds']:.2f} | {r['tokens']} | "
              f"{r['tokens'] / r['seconds']:.1f} |")  # fmt: skip
    for size in models:
        hf, vl = votes.get((size, "hf")), votes.get((size, "vllm"))
        if hf and vl:
            print(f"{size}: hf/vllm vote time per token "
                  f"{_ratio(hf['seconds'] / max(hf['tokens'], 1), vl['seconds'] / max(vl['tokens'], 1))}")  # fmt: skip


if __name__ == "__main__":
    main()
