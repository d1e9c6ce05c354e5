"""GRPO step time with shared prefills (app/quality/grpo_prefix.py) against TRL's own path.

Both train the same model on the same voted pairs with the same settings (the demo's: G=8,
16 pairs per step, KL beta 0.05, answer-only score prompt), alternating so machine load hits
them alike; the ratio of their median step times is what counts (this machine is noisy).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from app.demo.answer_prior import teach_answer_format  # noqa: E402
from app.demo.tiny import build_tiny_model  # noqa: E402
from app.quality.grpo import GRPORoundConfig, train_grpo  # noqa: E402
from app.quality.voting import VoteResult  # noqa: E402


def _images(count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(
            ((rng.random((56, 56, 3)) * 0.3 + 0.7) * rng.random() * 255).astype("uint8")
        )
        for _ in range(count)
    ]


def _step_seconds(model: Path, votes, images, config: GRPORoundConfig, work: Path) -> float:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    result = train_grpo(model, votes, images.__getitem__, config, out)
    steps = result.metrics["per_step"]["step_time_s"][1:]  # the first step pays for warm-up
    return statistics.median(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="model folder (default: tiny + format prior)")
    parser.add_argument("--steps", type=int, default=8, help="GRPO steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each path, alternating")
    parser.add_argument("--generations", type=int, default=8, help="samples per image G")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = Path(args.model) if args.model else None
        if model is None:
            tiny = build_tiny_model(work / "tiny", min_pixels=56 * 56, max_pixels=56 * 56)
            model = teach_answer_format(tiny, work / "answering")
        images = _images(64, seed=0)
        rng = np.random.default_rng(1)
        votes = []
        for _ in range(256):
            a, b = (int(x) for x in rng.choice(len(images), 2, replace=False))
            votes.append(VoteResult(a, b, 20, 12, 0, float(rng.random() < 0.5)))
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats):
            for shared in (True, False):
                config = GRPORoundConfig(
                    num_generations=args.generations, learning_rate=3e-4, beta=0.05,
                    pairs_per_step=16, max_steps=args.steps, reasoning=False, device="cpu",
                    shared_prefill=shared,
                )  # fmt: skip
                times[shared].append(_step_seconds(model, votes, images, config, work))
    fast, slow = min(times[True]), min(times[False])
    print(
        f"GRPO step, G={args.generations}, 16 pairs: TRL {slow:.3f} s, shared prefill {fast:.3f} s"
    )
    print(f"speed-up (TRL / shared): {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
