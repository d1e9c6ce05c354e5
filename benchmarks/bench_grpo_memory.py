"""Peak memory of one GRPO step on the reasoning fixture (Qwen's 151,936-row vocabulary).

Runs `train_grpo` for one step at two micro-batch sizes (same completions per step) and at two
completions-per-step counts (same micro-batch), and prints each peak, the largest single
allocation and the growth ratios. Memory is what the step allocates after the models are loaded:
on CUDA `torch.cuda.max_memory_allocated`, on CPU the profiler's allocation events.

    python benchmarks/bench_grpo_memory.py [--path shared|trl] [--model random] [--length 48]

`--path trl` runs TRL's GRPOTrainer (round setting shared_prefill=False) instead of ours.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from app.quality.grpo import GRPORoundConfig, train_grpo
from app.quality.voting import VoteResult

MB = 2**20


def fixture_model(folder: Path, source: str) -> Path:
    """builtin:tiny-reasoning (format prior: short, varying completions) when this checkout
    has it, else (or with source "random") random weights with the same architecture and
    vocabulary, whose completions run to the length limit."""
    from app.demo.tiny import build_tiny_model

    if source != "random":
        import app.demo.builtins  # noqa: F401  (registers the demo's builtins)
        from app.quality.builtins import builtin_names, resolve_model_source

        if source.removeprefix("builtin:") in builtin_names():
            return Path(resolve_model_source(source, folder / "builtins"))
        print(f"{source} is not in this checkout: random weights instead")
    return build_tiny_model(folder / "tiny-qwen", vocab="qwen", seed=0)


class _Largest(TorchDispatchMode):
    """The largest tensor any op returns (forward, backward, optimizer)."""

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0
        self.shape: tuple[int, ...] = ()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.numel() * t.element_size() > self.nbytes:
                self.nbytes, self.shape = t.numel() * t.element_size(), tuple(t.shape)
        return out


class _Peak:
    """Peak bytes allocated and the largest single tensor inside `measure()`."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak = 0
        self.largest = _Largest()

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        if self.device == "cuda":
            torch.cuda.synchronize()
            start = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            with self.largest:
                yield
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - start
            return
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof, self.largest:
            yield
        changes = sorted(
            (e.start_ns(), e.nbytes())
            for e in prof.profiler.kineto_results.events()
            if e.name() == "[memory]" and e.nbytes()
        )
        live = 0
        for _, delta in changes:  # bytes live above the start, in allocation order
            live += delta
            self.peak = max(self.peak, live)


def one_step(
    model_dir: Path,
    images: list[Image.Image],
    out: Path,
    *,
    pairs: int,
    accumulation: int,
    generations: int,
    length: int,
    shared: bool,
    device: str,
) -> _Peak:
    """Peak memory of the trainer's `train()` for one optimizer step."""
    from trl import GRPOTrainer

    votes = [VoteResult(a, b, 3, 1, 0, float(a > b)) for a in range(6) for b in range(a + 1, 6)]
    config = GRPORoundConfig(
        num_generations=generations,
        pairs_per_step=pairs,
        gradient_accumulation_steps=accumulation,
        max_completion_length=length,
        max_steps=1,
        learning_rate=1e-6,
        reasoning=True,
        mask_truncated_completions=False,  # every token scored: the most the step can hold
        shared_prefill=shared,
        device=device,
        seed=0,
    )
    peak = _Peak(device)
    original = GRPOTrainer.train

    def train(self, *args, **kwargs):  # measured after the models are loaded
        with peak.measure():
            return original(self, *args, **kwargs)

    GRPOTrainer.train = train
    try:
        train_grpo(model_dir, votes, images.__getitem__, config, out)
    finally:
        GRPOTrainer.train = original
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=["shared", "trl"], default="shared")
    parser.add_argument("--length", type=int, default=48, help="max completion tokens")
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--model", default="builtin:tiny-reasoning", help="or: random")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray((rng.random((56, 56, 3)) * 255 * (k + 1) / 6).astype("uint8"))
        for k in range(6)
    ]
    g, length = args.generations, args.length
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir = fixture_model(folder, args.model)
        print(f"model: {args.model}, path: {args.path}, device: {args.device}")
        runs = {  # (pairs per step, accumulation): micro-batch = 2 * pairs * G / accumulation
            "micro 2G, 4G per step": (2, 2),
            "micro 4G, 4G per step": (2, 1),
            "micro 2G, 8G per step": (4, 4),
        }
        peaks = {}
        for name, (pairs, acc) in runs.items():
            peaks[name] = one_step(
                model_dir,
                images,
                folder / name.replace(" ", "-").replace(",", ""),
                pairs=pairs,
                accumulation=acc,
                generations=g,
                length=length,
                shared=args.path == "shared",
                device=args.device,
            )
            micro = 2 * pairs * g // acc
            p = peaks[name]
            print(
                f"{args.path:6s} {name:22s} micro-batch {micro:3d} x {length} tokens: "
                f"peak {p.peak / MB:8.1f} MiB, largest tensor {p.largest.nbytes / MB:7.1f} MiB "
                f"{list(p.largest.shape)}",
                flush=True,
            )
        a, b, c = (peaks[n].peak for n in runs)
        vocab_row = 151936 * 4
        print(
            f"full fp32 logits of one micro-batch of {2 * g}: {2 * g * length * vocab_row / MB:.1f} MiB"
        )
        print(f"peak ratio, micro-batch x2 (same completions per step): {b / a:.2f}")
        print(f"peak ratio, completions per step x2 (same micro-batch): {c / a:.2f}")


if __name__ == "__main__":
    main()
