"""The GPU check behind scripts/gpu-check: bf16 reasoning scores and votes, then two GRPO steps
(fp32 master weights, bf16 autocast, gradient checkpointing) on the reasoning fixture scaled
up to a few hundred million random parameters; prints ONE JSON line.

Random weights never write a box, so the GRPO reward reads each completion's score from a hash
of its text: rewards vary, the update has a gradient, and the check measures cost, not learning.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

# (hidden, intermediate, layers, heads, kv heads, vision depth, vision hidden, image side)
SIZES = {
    "full": dict(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=12,
        num_attention_heads=16,
        num_key_value_heads=4,
        vision_depth=4,
        vision_hidden_size=512,
        vision_intermediate_size=2048,
        vision_num_heads=8,
    ),
    "small": {},  # the fixture's own sizes, for a CPU dry run
}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--small", action="store_true", help="fixture sizes, few short samples")
    parser.add_argument("--tokens", type=int, help="completion tokens (default 512; small 16)")
    parser.add_argument("--images", type=int, help="images scored (default 16; small 2)")
    parser.add_argument("--votes", type=int, help="votes K per pair (default 8; small 2)")
    parser.add_argument("--generations", type=int, help="GRPO G (default 8; small 2)")
    parser.add_argument("--pairs-per-step", type=int, help="pairs per step (default 4; small 1)")
    parser.add_argument("--out", help="also write the JSON line to this file")
    args = parser.parse_args()
    small = dict(tokens=16, images=2, votes=2, generations=2, pairs_per_step=1)
    full = dict(tokens=512, images=16, votes=8, generations=8, pairs_per_step=4)
    for name, value in (small if args.small else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def _images(count: int, side: int) -> list[Any]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [
        Image.fromarray((rng.random((side, side, 3)) * 255 * rng.random()).astype("uint8"))
        for _ in range(count)
    ]


def _hash_score(text: str) -> float:
    """A pseudo-score in 1..5 from the text (see the module docstring)."""
    return 1.0 + int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 401 / 100


def _peak_gb(torch: Any, device: str) -> float | None:
    if device != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated() / 1e9, 3)


def _generation_phase(model_dir: Path, images: list, args, torch: Any) -> dict[str, Any]:
    """bf16 deterministic reasoning scores and sampled reasoning votes: time and tokens."""
    from app.quality.loading import load_model

    model = load_model(str(model_dir), device=args.device, dtype=torch.bfloat16, reasoning=True)
    out: dict[str, Any] = {}
    pairs = [(images[i], images[(i + 1) % len(images)]) for i in range(len(images) // 2 or 1)]
    for name, run in (
        ("score", lambda: model.score(images, mode="deterministic", max_new_tokens=args.tokens)),
        (
            "votes",
            lambda: model.compare(
                pairs, mode="sampled", k=args.votes, max_new_tokens=args.tokens, seed=0
            ),
        ),
    ):
        if args.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        results = run()
        if args.device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        tokens = sum(r.tokens or 0 for r in results)
        out[name] = {
            "seconds": round(seconds, 3),
            "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1),
            "peak_gpu_gb": _peak_gb(torch, args.device),
        }
    out["votes"]["pairs"], out["votes"]["k"] = len(pairs), args.votes
    model.close()
    return out


def _grpo_phase(model_dir: Path, images: list, args, work: Path, torch: Any) -> dict[str, Any]:
    """Two GRPO steps; step time, its split, rollout tokens per second, whether weights moved."""
    from grpo_phases import split_step, timed_phases
    from safetensors.torch import load_file

    import app.quality.grpo as grpo
    from app.quality.grpo import GRPORoundConfig, train_grpo
    from app.quality.voting import VoteResult

    class HashedFidelity(grpo.FidelityReward):
        def __init__(self, gamma: float) -> None:
            super().__init__(parse=_hash_score, gamma=gamma)

    grpo.FidelityReward = HashedFidelity  # this process only: see the module docstring
    n = len(images)
    votes = [VoteResult(i, (i + 1) % n, 3, 1, 0, 0.75) for i in range(n)]
    config = GRPORoundConfig(
        num_generations=args.generations,
        pairs_per_step=args.pairs_per_step,
        max_steps=2,
        learning_rate=1e-5,
        reasoning=True,
        max_completion_length=args.tokens,
        mask_truncated_completions=False,  # random weights never stop: keep them in the loss
        device=args.device,
        precision="bf16",
        gradient_checkpointing=True,
    )
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with timed_phases() as totals:
        result = train_grpo(model_dir, votes, images.__getitem__, config, work / "trained")
    steps = result.metrics["per_step"]["step_time_s"]
    lengths = result.metrics["per_step"]["completion_length"]
    rows = 2 * args.pairs_per_step * args.generations
    before = load_file(next(model_dir.glob("*.safetensors")))
    after: dict[str, Any] = {}
    for path in result.checkpoint_dir.glob("*.safetensors"):
        after.update(load_file(path))
    changed = [k for k, v in before.items() if k in after and not torch.equal(v, after[k].to(v))]
    return {
        "steps": len(steps),
        "step_time_s": [round(s, 3) for s in steps],
        "split_s_per_step": {
            k: round(v, 3)
            for k, v in split_step(totals, sum(steps) / len(steps), len(steps)).items()
        },
        "rollout_tokens_per_s": round(
            sum(length * rows for length in lengths) / max(totals["generation"], 1e-9), 1
        ),
        "completion_length": lengths,
        "peak_gpu_gb": _peak_gb(torch, args.device),
        "weights_changed": bool(changed),
        "tensors_changed": f"{len(changed)}/{len(before)}",
    }


def main() -> None:
    args = _args()
    start = time.perf_counter()
    report: dict[str, Any] = {"check": "gpu-check", "ok": False, "small": args.small}
    try:
        import torch
        import transformers
        from safetensors.torch import load_file

        from app.demo.tiny import build_tiny_model

        if args.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("no CUDA device; use --device cpu --small for a dry run")
        torch.manual_seed(0)
        report["device"] = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
        report["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
        side = 112 if args.small else 448
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            model_dir = build_tiny_model(
                work / "model",
                vocab="qwen",
                reasoning=True,
                seed=0,
                min_pixels=56 * 56,
                max_pixels=side * side,
                **SIZES["small" if args.small else "full"],
            )
            params = sum(
                v.numel() for p in model_dir.glob("*.safetensors") for v in load_file(p).values()
            )
            report["parameters"] = params
            report["completion_tokens"] = args.tokens
            images = _images(args.images, side)
            report.update(_generation_phase(model_dir, images, args, torch))
            report["grpo"] = _grpo_phase(model_dir, images, args, work, torch)
        if args.device == "cuda":
            report["peak_gpu_gb"] = round(torch.cuda.max_memory_reserved() / 1e9, 3)
        report["ok"] = report["grpo"]["weights_changed"]
    except Exception as exc:  # the one line says what failed, the traceback goes to stderr
        traceback.print_exc()
        report["error"] = f"{type(exc).__name__}: {exc}"
    report["wall_s"] = round(time.perf_counter() - start, 1)
    line = json.dumps(report)
    print(line, flush=True)
    if args.out:
        Path(args.out).write_text(line + "\n")
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
