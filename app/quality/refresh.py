"""Refresh a model's comparison answer before it votes, from the labels it was trained on.

GRPO on the score prompt also moves the comparison answer: on a tiny model, where "1" is both a
rating and the answer "the second image is better", scoring dark images low taught the model to
prefer the darker image of a pair (darken pairs 0.72 right before round 1, 0.27 after, docs/demo.md).
The next round's votes then carry the error. A refresh trains the comparison answer for a few
supervised steps on the majority labels of the round that produced the model (no ground truth:
the parent's own votes), so the model votes with the skill it had; GRPO then starts from it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.quality.loading import load_model, reasoning_default
from app.quality.supervised import save_finetuned, supervised_batch
from app.quality.voting import VoteResult

__all__ = ["RefreshConfig", "refresh_comparisons", "refresh_labels"]


@dataclass
class RefreshConfig:
    """Supervised comparison steps before a round votes; 0 steps = off (the paper has none)."""

    steps: int = field(default=0, metadata={"help": "Optimizer steps (0 = off)."})
    learning_rate: float = field(default=3e-4, metadata={"help": "AdamW learning rate."})
    pairs_per_step: int = field(default=32, metadata={"help": "Labelled pairs per step."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping."})
    keep_scores: float = field(
        default=1.0,
        metadata={
            "help": "Weight of a KL term that holds the score answer where it was (each step, "
            "on the step's images): the refresh is for the comparison only. 0 = off."
        },
    )

    def __post_init__(self) -> None:
        if self.steps < 0 or self.pairs_per_step < 1 or self.learning_rate <= 0:
            raise ValueError("steps must be >= 0, pairs_per_step >= 1 and learning_rate > 0")

    @property
    def enabled(self) -> bool:
        return self.steps > 0


def refresh_labels(votes: Sequence[VoteResult]) -> list[VoteResult]:
    """The votes a refresh learns from: training pairs whose majority has a direction."""
    return [v for v in votes if not v.holdout and v.p_star is not None and v.p_star != 0.5]


def refresh_comparisons(
    model_dir: str | Path,
    out: str | Path,
    votes: Sequence[VoteResult],
    load_image: Callable[[Hashable], Any],
    config: RefreshConfig,
    *,
    seed: int = 0,
    device: str = "auto",
    max_pixels: int | None = None,
) -> Path:
    """Train the answer-only comparison of `model_dir` on the majority of `votes` (each pair in a
    random order, as votes are cast) and write the result to `out` (complete or absent)."""
    if reasoning_default(str(model_dir)):
        raise ValueError("a refresh trains the answer-only compare prompt; this model reasons")
    labelled = refresh_labels(votes)
    if not labelled:
        raise ValueError("no labelled pair to refresh the comparison from")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    qm = load_model(str(model_dir), device=device, dtype="float32", max_pixels=max_pixels)
    frozen = copy.deepcopy(qm.model).eval() if config.keep_scores else None
    model = qm.model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    for _ in range(config.steps):
        pairs, answers = [], []
        for i in rng.integers(len(labelled), size=config.pairs_per_step):
            v = labelled[i]
            a_first = bool(rng.random() < 0.5)
            first, second = (v.a, v.b) if a_first else (v.b, v.a)
            pairs.append((load_image(first), load_image(second)))
            answers.append("0" if (v.p_star > 0.5) == a_first else "1")
        loss = model(**supervised_batch(qm, "compare", pairs, answers)).loss
        if frozen is not None:
            singles = [[image] for pair in pairs for image in pair]
            loss = loss + config.keep_scores * _score_drift(qm, frozen, singles)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optim.step()
    return save_finetuned(qm, model_dir, out)


def _score_drift(qm: Any, frozen: Any, rows: list) -> torch.Tensor:
    """KL(frozen || current) of the next-token distribution at the score answer position."""
    inputs = qm.encode("score", False, rows)
    with torch.no_grad():
        target = torch.log_softmax(frozen(**inputs, logits_to_keep=1).logits[:, -1].float(), -1)
    current = torch.log_softmax(qm.model(**inputs, logits_to_keep=1).logits[:, -1].float(), -1)
    return torch.nn.functional.kl_div(current, target, log_target=True, reduction="batchmean")
