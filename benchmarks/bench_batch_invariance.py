"""Batch invariance of fast scores, per model family (tiny random models, CPU, float32).

Scores 16 images of mixed sizes (different image-token counts) one at a time, in one batch and
shuffled in mixed-size batches of 5, and prints the worst difference from the one-at-a-time
scores per family (as a control, also one batch with its padding unmasked); then it runs
deterministic mode twice on a reasoning-marked copy (identical or not). --scale multiplies
every weight (scores spread, but a saturated answer distribution hides faults: keep 1).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from app.demo.tiny import build_tiny_model  # noqa: E402
from app.quality.families import FAMILIES  # noqa: E402
from app.quality.loading import load_model  # noqa: E402

SIZES = [(56, 56), (112, 112), (56, 112), (112, 56), (84, 84), (70, 98), (98, 70), (64, 96)]


def _images(count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))
        for w, h in (SIZES[k % len(SIZES)] for k in range(count))
    ]


def _scores(model, images: list, batch_size: int) -> np.ndarray:
    model.batch_size = batch_size
    return np.array([r.score for r in model.score(images, mode="fast")])


def _unmasked(model, images: list) -> np.ndarray:
    """Control: one batch with the padding unmasked, to show the measurement sees a fault."""
    encode = model._encoder._fast

    def broken(*args, **kwargs):
        batch = encode(*args, **kwargs)
        batch["attention_mask"] = torch.ones_like(batch["attention_mask"])
        return batch

    model._encoder._fast = broken
    try:
        return _scores(model, images, len(images))
    finally:
        model._encoder._fast = encode


def measure(folder: Path, images: list, scale: float, seed: int) -> dict:
    """Worst |score - one-at-a-time score| batched and shuffled, and the spread of scores."""
    model = load_model(str(folder), device="cpu")
    with torch.no_grad():
        for p in model.model.parameters():
            p.mul_(scale)
    alone = _scores(model, images, 1)
    together = _scores(model, images, len(images))
    order = np.random.default_rng(seed).permutation(len(images))
    shuffled = np.empty(len(images))
    shuffled[order] = _scores(model, [images[i] for i in order], 5)
    tokens = {
        int(model.encode("score", False, [[img]])["image_grid_thw"].prod()) // 4 for img in images
    }
    return {
        "one_batch": float(np.abs(together - alone).max()),
        "shuffled_batches_of_5": float(np.abs(shuffled - alone).max()),
        "control_unmasked_padding": float(np.abs(_unmasked(model, images) - alone).max()),
        "score_range": [float(alone.min()), float(alone.max())],
        "image_tokens": sorted(tokens),
    }


def deterministic_repeats(folder: Path, images: list, max_new_tokens: int) -> bool:
    """Deterministic mode twice on a reasoning-marked model: identical scores and probs."""
    marker = folder / "evoquality_tiny.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "reasoning": True}))
    model = load_model(str(folder), device="cpu", batch_size=5)
    runs = [
        [
            (r.score, r.probs)
            for r in model.score(images, mode="deterministic", max_new_tokens=max_new_tokens)
        ]
        for _ in range(2)
    ]
    return runs[0] == runs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = _images(args.images, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES.values():
            folder = build_tiny_model(Path(tmp) / family.name, family=family.name, seed=args.seed)
            row = measure(folder, images, args.scale, args.seed)
            row["deterministic_repeats_identical"] = deterministic_repeats(
                folder, images, args.max_new_tokens
            )
            print(json.dumps({"family": family.name, "scale": args.scale, **row}))


if __name__ == "__main__":
    main()
