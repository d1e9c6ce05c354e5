"""Teach a tiny model the answer format (one digit, then <|im_end|>) so its votes and scores parse.

A random tiny model puts ~2/550 of its mass on "0"/"1"; sampled votes are then almost all
invalid. A few hundred supervised steps on brightness make answers parse and depend on the
images, which tests and benchmarks of voting and sampling need. Not a quality model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app.quality.loading import load_model
from app.quality.supervised import supervised_batch


@dataclass
class AnswerPriorConfig:
    """Supervised format prior on synthetic brightness images."""

    steps: int = 150  # optimiser steps
    pairs_per_step: int = 8  # compare examples (answer "0"/"1") per step
    images_per_step: int = 8  # score examples (answer "1".."5") per step
    lr: float = 2e-3
    image_size: int = 56  # 56x56 -> 4 image tokens, every prompt the same length
    seed: int = 0


def _image(rng: np.random.Generator, size: int) -> tuple[Image.Image, float]:
    """A textured patch with a random brightness in [0, 1]; returns the image and brightness."""
    brightness = float(rng.random())
    base = rng.random(3) * 0.5 + 0.5
    texture = rng.random((size, size, 1)) * 0.3 + 0.7
    pixels = np.clip(base * texture * brightness, 0, 1)
    return Image.fromarray((pixels * 255).astype(np.uint8)), brightness


def teach_answer_format(
    source: str | Path, out: str | Path, config: AnswerPriorConfig | None = None
) -> Path:
    """Fine-tune the model at `source` to answer in format and save it (with processor) to `out`."""
    config = config or AnswerPriorConfig()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    qm = load_model(str(source), device="cpu", dtype="float32")
    model = qm.model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=config.lr)
    for _ in range(config.steps):
        pairs, compare_answers = [], []
        for _ in range(config.pairs_per_step):
            (a, ba), (b, bb) = _image(rng, config.image_size), _image(rng, config.image_size)
            pairs.append((a, b))
            compare_answers.append("0" if ba > bb else "1")
        singles, score_answers = [], []
        for _ in range(config.images_per_step):
            img, bright = _image(rng, config.image_size)
            singles.append((img,))
            score_answers.append(str(int(round(1 + 4 * bright))))
        loss = model(**supervised_batch(qm, "compare", pairs, compare_answers)).loss
        loss = loss + model(**supervised_batch(qm, "score", singles, score_answers)).loss
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
    model.eval()
    out = Path(out)
    model.save_pretrained(out)
    qm.processor.save_pretrained(out)
    marker = Path(source) / "evoquality_tiny.json"
    if marker.is_file():
        (out / marker.name).write_text(marker.read_text())
    return out
