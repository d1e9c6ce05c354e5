"""Cost of K sampled votes per pair vs one logits compare, and how well the two agree.

Tiny model given a short answer-format prior (so votes parse), CPU, one thread, answer-only
prompts. The issue's bar: 32 votes cost at most 3x a logits compare of the same pair.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from app.demo.answer_prior import teach_answer_format  # noqa: E402
from app.demo.tiny import build_tiny_model  # noqa: E402
from app.quality.loading import load_model  # noqa: E402
from app.quality.model import QualityModel  # noqa: E402


def _pairs(count: int, seed: int) -> list[tuple[Image.Image, Image.Image]]:
    rng = np.random.default_rng(seed)

    def image() -> Image.Image:
        level = rng.random()
        pixels = (rng.random((56, 56, 3)) * 0.3 + 0.7) * level
        return Image.fromarray((pixels * 255).astype(np.uint8))

    return [(image(), image()) for _ in range(count)]


def _per_pair_seconds(qm: QualityModel, pairs, repeats: int, variants: dict) -> dict:
    """Best-of-repeats seconds per pair for each variant, one pair per call; the variants
    alternate within each repeat so machine load hits them alike."""
    best = dict.fromkeys(variants, float("inf"))
    for kwargs in variants.values():
        qm.compare(pairs[:1], **kwargs)  # warm-up
    for _ in range(repeats):
        for name, kwargs in variants.items():
            start = time.perf_counter()
            for i, pair in enumerate(pairs):
                qm.compare([pair], seed=i, **kwargs)
            best[name] = min(best[name], (time.perf_counter() - start) / len(pairs))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="model folder (default: tiny + format prior)")
    parser.add_argument("--pairs", type=int, default=64, help="pairs to compare")
    parser.add_argument("--k", type=int, default=32, help="votes per pair")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the best counts")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    with tempfile.TemporaryDirectory() as tmp:
        source = args.model
        if source is None:
            tiny = build_tiny_model(Path(tmp) / "tiny")
            source = str(teach_answer_format(tiny, Path(tmp) / "answering"))
        qm = load_model(source, device="cpu", reasoning=False)
        pairs = _pairs(args.pairs, seed=1)

        seconds = _per_pair_seconds(
            qm,
            pairs,
            args.repeats,
            {
                "logits": {"mode": "logits"},
                "votes": {"mode": "sampled", "k": args.k},
                "votes_stop": {"mode": "sampled", "k": args.k, "max_new_tokens": 4},
            },
        )
        logits_s, votes_s, stop_s = seconds["logits"], seconds["votes"], seconds["votes_stop"]

        exact = qm.compare(pairs, mode="logits")
        votes = qm.compare(pairs, mode="sampled", k=args.k, seed=0)
    decided = [(e, v) for e, v in zip(exact, votes, strict=True) if not 0.4 <= e.p_first <= 0.6]
    agree = sum((v.votes_a > v.votes_b) == (e.p_first > 0.5) and v.votes_a != v.votes_b
                for e, v in decided)  # fmt: skip
    gap = np.mean([abs(v.p_first - e.p_first) for e, v in zip(exact, votes, strict=True)])
    invalid = sum(v.invalid for v in votes) / (args.k * len(votes))
    print(f"logits compare:                 {1e3 * logits_s:7.2f} ms/pair")
    print(f"{args.k} sampled votes (1 token):    {1e3 * votes_s:7.2f} ms/pair")
    print(f"{args.k} sampled votes (<=4 tokens): {1e3 * stop_s:7.2f} ms/pair")
    print(f"ratio votes / logits:           {votes_s / logits_s:7.2f}  (target <= 3)")
    print(f"ratio votes(<=4 tok) / logits:  {stop_s / logits_s:7.2f}")
    print(f"majority agrees with logits on {agree}/{len(decided)} pairs outside 0.4-0.6 "
          f"({agree / max(len(decided), 1):.1%}); mean |p_vote - p_logits| {gap:.3f}; "
          f"invalid votes {invalid:.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
