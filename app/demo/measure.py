"""Measuring a demo model: eval-split accuracy and SRCC, pseudo-label accuracy, the table and plot."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.demo.config import DemoConfig
from app.demo.synthetic import SyntheticImage
from app.quality import metrics
from app.quality.augment import Variant
from app.quality.evaluation import save_figure
from app.quality.model import QualityModel
from app.quality.pairs import sample_pairs
from app.quality.voting import VoteResult


@dataclass
class RoundRow:
    """One row of the demo table: a model version measured on the eval split."""

    round: int
    pseudo_acc_k1: float  # expected accuracy of one vote, against the hidden levels
    pseudo_acc_k32: float  # accuracy of the K-vote majority labels (ties count half)
    compare_acc: float  # logits comparison on eval pairs
    srcc_sampled: float  # mean of `eval_samples` sampled scores per image
    plcc_sampled: float
    srcc_fast: float  # expected rating from the answer-token distribution
    score_std: float  # std of the sampled-mean scores across images (collapse check)
    # Labels on pairs of two versions of one pool image, where the next round adds variants.
    same_ref_acc_k32: float = math.nan


COLUMNS = (
    ("round", "round"),
    ("pseudo_acc_k1", "pseudo-label acc K=1"),
    ("pseudo_acc_k32", "pseudo-label acc K=32"),
    ("compare_acc", "compare acc"),
    ("srcc_sampled", "SRCC sampled"),
    ("plcc_sampled", "PLCC sampled"),
    ("srcc_fast", "SRCC fast"),
    ("score_std", "score std"),
    ("same_ref_acc_k32", "same-ref acc K=32"),
)


def level_pairs(items: Sequence[SyntheticImage], n: int, seed: int) -> list[tuple[int, int]]:
    """n distinct index pairs of different level (seeded)."""
    idx = list(range(len(items)))
    candidates = sample_pairs(idx, min(len(idx) * (len(idx) - 1) // 2, 4 * n), seed=seed)
    out = [(p.a, p.b) for p in candidates if items[p.a].level != items[p.b].level]
    return out[:n]


def pseudo_label_accuracy(
    votes: Sequence[VoteResult], level: Callable[[Any], int]
) -> tuple[float, float]:
    """(K=1, K) accuracy of the voted labels against hidden levels, on pairs of unequal level.

    K=1 is the expected accuracy of a single valid vote (correct votes / valid votes), the
    unbiased estimate from the same K votes; the K-vote majority counts a tie as half right.
    """
    correct = valid = 0
    majority = []
    for v in votes:
        if isinstance(v.a, Variant) or isinstance(v.b, Variant) or v.p_star is None:
            continue
        la, lb = level(v.a), level(v.b)
        if la == lb or v.votes_a + v.votes_b == 0:
            continue
        a_better = la < lb
        correct += v.votes_a if a_better else v.votes_b
        valid += v.votes_a + v.votes_b
        p = v.votes_a / (v.votes_a + v.votes_b)
        majority.append(0.5 if p == 0.5 else float((p > 0.5) == a_better))
    k1 = correct / valid if valid else math.nan
    return k1, float(np.mean(majority)) if majority else math.nan


def same_reference_accuracy(votes: Sequence[VoteResult]) -> tuple[float, int]:
    """Accuracy of the labels on pairs of two versions of one reference whose order is known
    (the reference vs a variant, or two levels of one distortion type); and their count."""

    def added(key: Any) -> tuple[str | None, int]:
        return (key.kind, key.level) if isinstance(key, Variant) else (None, 0)

    right = []
    for v in votes:
        ra = v.a.ref if isinstance(v.a, Variant) else v.a
        rb = v.b.ref if isinstance(v.b, Variant) else v.b
        if ra != rb or v.p_star is None:
            continue
        (ka, la), (kb, lb) = added(v.a), added(v.b)
        if la == lb or (ka and kb and ka != kb):
            continue
        right.append(0.5 if v.p_star == 0.5 else float((v.p_star > 0.5) == (la < lb)))
    return (float(np.mean(right)) if right else math.nan), len(right)


def measure(
    qm: QualityModel,
    items: Sequence[SyntheticImage],
    pairs: Sequence[tuple[int, int]],
    config: DemoConfig,
) -> dict[str, float]:
    """Eval-split numbers of one model: comparison accuracy, sampled and fast score SRCC/PLCC."""
    images = [it.image for it in items]
    mos = [it.mos for it in items]
    compared = qm.compare([(images[a], images[b]) for a, b in pairs], mode="logits")
    truth = [1.0 if items[a].level < items[b].level else 0.0 for a, b in pairs]
    sampled = qm.score(images, mode="sampled", n=config.eval_samples, seed=config.seed)
    fast = qm.score(images, mode="fast")
    # An image with no parsable sample gets the midpoint: it must not vanish from the ranking.
    means = [s.score if s.score is not None else 3.0 for s in sampled]
    return {
        "compare_acc": metrics.pairwise_accuracy([c.p_first for c in compared], truth),
        "srcc_sampled": metrics.srcc(means, mos),
        "plcc_sampled": metrics.plcc(means, mos),
        "srcc_fast": metrics.srcc([s.score for s in fast], mos),
        "score_std": float(np.std(means)),
        "sampled_parse_rate": sum(s.valid for s in sampled) / sum(s.n for s in sampled),
    }


def _cell(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def format_table(rows: Sequence[RoundRow]) -> str:
    """The demo table as Markdown, columns in the issue's order."""
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---:" for _ in COLUMNS) + "|"
    body = [
        "| "
        + " | ".join(
            str(row.round) if key == "round" else _cell(getattr(row, key)) for key, _ in COLUMNS
        )
        + " |"
        for row in rows
    ]
    return "\n".join([head, rule, *body])


def plot_rows(rows: Sequence[RoundRow], path: str | Path) -> Path:
    """PNG of every table column against the round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [row.round for row in rows]
    fig, (acc_ax, score_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for key, title in (*COLUMNS[1:4], COLUMNS[8]):
        acc_ax.plot(rounds, [getattr(r, key) for r in rows], marker="o", label=title)
    acc_ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    acc_ax.set(xlabel="round", ylabel="accuracy", title="pairwise accuracy (eval / pool)")
    for key, title in COLUMNS[4:8]:
        score_ax.plot(rounds, [getattr(r, key) for r in rows], marker="o", label=title)
    score_ax.axhline(0.0, color="grey", lw=0.8, ls=":")
    score_ax.set(xlabel="round", title="scores on the eval split")
    for ax in (acc_ax, score_ax):
        ax.set_xticks(rounds)
        ax.legend(fontsize=8)
    return save_figure(fig, path)
