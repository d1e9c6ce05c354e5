"""One evolution round as a function: sample pairs, vote, GRPO, compare candidate with parent.

Workers split the same steps into tasks (vote chunks, train, evaluate); this module runs them
in one process for scripts, notebooks and tests.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import shutil
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.special import ndtr

from app.quality.augment import AugmentConfig, augmented_pairs, variant_loader
from app.quality.checkpoint import weights_digest
from app.quality.grpo import GRPORoundConfig, TrainingCancelled, train_grpo, training_pairs
from app.quality.images import prepare_image
from app.quality.loading import load_model
from app.quality.metrics import pairwise_accuracy
from app.quality.model import QualityModel, ScoreResult
from app.quality.pairs import sample_pairs
from app.quality.refresh import RefreshConfig, refresh_comparisons, refresh_labels
from app.quality.reward import GAMMA
from app.quality.voting import VoteConfig, VoteResult, chunk_count, iter_chunks

__all__ = [
    "RoundConfig",
    "RoundResult",
    "evaluate_on_pairs",
    "holdout_scores",
    "movement",
    "run_round",
    "vote_summary",
]

Progress = Callable[[str, int, int], None]


@dataclass
class RoundConfig:
    """A whole round; defaults are the paper's where it has one."""

    n_pairs: int = field(default=20_000, metadata={"help": "Random pairs voted (paper: ~20k)."})
    holdout_fraction: float = field(
        default=0.05,
        metadata={"help": "Share of pairs kept out of training to gate the candidate."},
    )
    vote: VoteConfig = field(default_factory=VoteConfig, metadata={"help": "Offline stage."})
    grpo: GRPORoundConfig = field(
        default_factory=GRPORoundConfig, metadata={"help": "Online stage; its seed is the round's."}
    )
    eval_mode: Literal["fast", "deterministic", "sampled"] | None = field(
        default=None,
        metadata={
            "help": "How holdout images are scored for the score accuracy; None = the model's "
            "serving mode (the reasoning prompt for a reasoning model)."
        },
    )
    eval_samples: int = field(default=8, metadata={"help": "Samples per image when sampled."})
    device: str = field(default="auto", metadata={"help": "Where voting and evaluation run."})
    max_pixels: int | None = field(
        default=None, metadata={"help": "Image pixel cap; None = the processor's own bound."}
    )
    batch_size: int = field(default=8, metadata={"help": "Images or pairs per forward pass."})
    augment: AugmentConfig = field(
        default_factory=AugmentConfig,
        metadata={"help": "Distorted variants and same-reference pairs (paper: round 2)."},
    )
    refresh: RefreshConfig = field(
        default_factory=RefreshConfig,
        metadata={"help": "Comparison refresh before voting, from the parent's own labels."},
    )


@dataclass
class RoundResult:
    """The candidate checkpoint (not yet promoted), its digest, all votes and the metrics."""

    checkpoint_dir: Path
    digest: str
    metrics: dict[str, Any]
    votes: list[VoteResult]


def vote_summary(votes: Sequence[VoteResult]) -> dict[str, float | int]:
    """Counts and shares that describe a round's pseudo-labels."""
    labelled = [v.p_star for v in votes if v.p_star is not None]
    total_votes = sum(v.votes_a + v.votes_b + v.invalid for v in votes)
    return {
        "pairs": len(votes),
        "holdout_pairs": sum(v.holdout for v in votes),
        "train_pairs": len(training_pairs(votes)),
        "unlabelled_pairs": len(votes) - len(labelled),
        "tie_fraction": float(np.mean([p == 0.5 for p in labelled])) if labelled else math.nan,
        "invalid_vote_fraction": sum(v.invalid for v in votes) / total_votes
        if total_votes
        else math.nan,
    }


def _pair_probability(a: Any, b: Any) -> float:
    """P(a scores above b) under the same Thurstone model as the reward; 0.5 if either failed."""
    if a.score is None or b.score is None:
        return 0.5
    return float(ndtr((a.score - b.score) / math.sqrt(a.std**2 + b.std**2 + GAMMA)))


def holdout_scores(
    model: QualityModel,
    votes: Sequence[VoteResult],
    load_image: Callable[[Hashable], Any],
    *,
    mode: str | None = None,
    samples: int = 8,
    seed: int = 0,
) -> dict[Hashable, ScoreResult]:
    """Every image of `votes` scored once (mode None: the model's serving mode)."""
    keys = list(dict.fromkeys(k for v in votes for k in (v.a, v.b)))
    scored = model.score([load_image(k) for k in keys], mode=mode, n=samples, seed=seed)
    return dict(zip(keys, scored, strict=True))


def movement(
    parent: Mapping[Hashable, ScoreResult], candidate: Mapping[Hashable, ScoreResult]
) -> dict[str, float | int]:
    """How far the candidate moved from its parent on the same images: mean |delta score|, and
    mean KL(candidate || parent) of the answer-digit distributions where both modes give one."""
    keys = [k for k in parent if k in candidate]
    deltas = [
        abs(candidate[k].score - parent[k].score)
        for k in keys
        if candidate[k].score is not None and parent[k].score is not None
    ]
    kls = [
        _kl(candidate[k].probs, parent[k].probs)
        for k in keys
        if candidate[k].probs is not None and parent[k].probs is not None
    ]
    return {
        "images": len(keys),
        "score_change": float(np.mean(deltas)) if deltas else math.nan,
        "answer_kl": float(np.mean(kls)) if kls else math.nan,
    }


def _kl(p: Sequence[float], q: Sequence[float]) -> float:
    p_arr = np.clip(np.asarray(p, dtype=float), 1e-12, None)
    q_arr = np.clip(np.asarray(q, dtype=float), 1e-12, None)
    return float(np.sum(p_arr * (np.log(p_arr) - np.log(q_arr))))


def evaluate_on_pairs(
    model: QualityModel,
    votes: Sequence[VoteResult],
    load_image: Callable[[Hashable], Any],
    *,
    mode: str | None = None,
    samples: int = 8,
    seed: int = 0,
    scores: Mapping[Hashable, ScoreResult] | None = None,
) -> dict[str, float | int]:
    """Pairwise accuracy against the voted p* of `votes`: by scores and by comparison, both in
    `mode` (None: the model's serving modes, the prompt GRPO trains for a reasoning model).
    `scores`: the images' scores when already taken (holdout_scores, same mode)."""
    labelled = [v for v in votes if v.p_star is not None]
    if not labelled:
        return {"pairs": 0, "score_accuracy": math.nan, "compare_accuracy": math.nan}
    images = {k: load_image(k) for v in labelled for k in (v.a, v.b)}
    by_key = dict(scores) if scores is not None else {}
    missing = [v for v in labelled if v.a not in by_key or v.b not in by_key]
    if missing:
        taken = holdout_scores(
            model, missing, images.__getitem__, mode=mode, samples=samples, seed=seed
        )
        by_key.update(taken)
    labels = [v.p_star for v in labelled]
    by_score = [_pair_probability(by_key[v.a], by_key[v.b]) for v in labelled]
    compare_mode = _compare_mode(model, mode)
    compared = model.compare([(images[v.a], images[v.b]) for v in labelled], mode=compare_mode)
    return {
        "pairs": len(labelled),
        "score_accuracy": pairwise_accuracy(by_score, labels),
        "compare_accuracy": pairwise_accuracy([c.p_first for c in compared], labels),
        "score_std_across_images": float(
            np.std([s.score for s in by_key.values() if s.score is not None] or [math.nan])
        ),
        "compare_mode": compare_mode,
    }


def _compare_mode(model: QualityModel, score_mode: str | None) -> str:
    """The comparison that matches a score mode: the exact answer-only one for fast (and for
    sampled, whose vote sampling would add noise), the box reading for deterministic."""
    if score_mode is None:
        return model.serving_mode("compare")
    return "deterministic" if score_mode == "deterministic" else "logits"


def _load(model_dir: str | Path, config: RoundConfig) -> QualityModel:
    return load_model(
        str(model_dir),
        device=config.device,
        max_pixels=config.max_pixels,
        batch_size=config.batch_size,
    )


def run_round(
    model_dir: str | Path,
    image_paths: Sequence[str | Path],
    config: RoundConfig,
    out_dir: str | Path,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Progress | None = None,
    parent_labels: tuple[Sequence[VoteResult], Callable[[Hashable], Any]] | None = None,
) -> RoundResult:
    """Run one round from the checkpoint in `model_dir` and write the candidate to `out_dir`.

    Holdout pairs are voted by the parent and never trained on; the candidate and the parent
    are both measured on them. Raises TrainingCancelled if `should_stop` returns True.
    `parent_labels`: the votes of the round that produced `model_dir` and their image loader;
    with `config.refresh` on, the parent's comparison is refreshed on them first, and that
    model votes and is trained.
    """
    out_dir = Path(out_dir)
    voter = out_dir.with_name(f".{out_dir.name}.refreshed")
    try:
        return _run_round(
            model_dir, image_paths, config, out_dir, seed, should_stop, on_progress,
            parent_labels, voter,
        )  # fmt: skip
    finally:
        shutil.rmtree(voter, ignore_errors=True)


def _run_round(
    model_dir: str | Path,
    image_paths: Sequence[str | Path],
    config: RoundConfig,
    out_dir: Path,
    seed: int,
    should_stop: Callable[[], bool] | None,
    on_progress: Progress | None,
    parent_labels: tuple[Sequence[VoteResult], Callable[[Hashable], Any]] | None,
    voter: Path,
) -> RoundResult:
    report = on_progress or (lambda stage, done, total: None)
    timings: dict[str, float] = {}
    parent_dir = model_dir
    refreshed: dict[str, Any] = {"steps": 0}
    if config.refresh.enabled and parent_labels is not None:
        start = time.perf_counter()
        shutil.rmtree(voter, ignore_errors=True)
        model_dir = refresh_comparisons(
            parent_dir, voter, *parent_labels, config.refresh, seed=seed, device=config.device,
            max_pixels=config.max_pixels,
        )  # fmt: skip
        refreshed = {"steps": config.refresh.steps, "pairs": len(refresh_labels(parent_labels[0]))}
        timings["refresh_s"] = time.perf_counter() - start
    ids = [str(p) for p in image_paths]
    if config.augment.enabled:
        pairs = augmented_pairs(ids, config.n_pairs, config.augment, config.holdout_fraction, seed)
    else:
        pairs = sample_pairs(ids, config.n_pairs, config.holdout_fraction, seed)

    start = time.perf_counter()
    parent = _load(model_dir, config)
    max_pixels = parent.max_pixels

    def load_stored(key: Hashable) -> Any:
        return prepare_image(str(key), max_pixels)

    load_image = variant_loader(load_stored, seed) if config.augment.enabled else load_stored
    timings["load_parent_s"] = time.perf_counter() - start

    start = time.perf_counter()
    votes: list[VoteResult] = []
    n_chunks = chunk_count(len(pairs), config.vote.chunk_size)
    for index, rows in iter_chunks(parent, pairs, load_image, config.vote, seed):
        votes.extend(rows)
        report("vote", index + 1, n_chunks)
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"stopped while voting, after chunk {index}")
    timings["vote_s"] = time.perf_counter() - start

    start = time.perf_counter()
    holdout = [v for v in votes if v.holdout]
    if holdout and model_dir != parent_dir:  # the gate compares with the parent, not its refresh
        del parent
        parent = _load(parent_dir, config)
    measure = {"mode": config.eval_mode, "samples": config.eval_samples, "seed": seed}
    parent_scores = holdout_scores(parent, holdout, load_image, **measure)
    parent_eval = evaluate_on_pairs(parent, holdout, load_image, scores=parent_scores, **measure)
    timings["eval_parent_s"] = time.perf_counter() - start
    del parent
    gc.collect()  # one model in memory at a time: the trainer loads its own copies

    start = time.perf_counter()
    trained = train_grpo(
        model_dir,
        votes,
        load_image,
        dataclasses.replace(config.grpo, seed=seed),
        out_dir,
        should_stop=should_stop,
        on_progress=lambda step, total: report("train", step, total),
    )
    timings["train_s"] = time.perf_counter() - start

    start = time.perf_counter()
    candidate = _load(trained.checkpoint_dir, config)
    candidate_scores = holdout_scores(candidate, holdout, load_image, **measure)
    candidate_eval = evaluate_on_pairs(
        candidate, holdout, load_image, scores=candidate_scores, **measure
    )
    timings["eval_candidate_s"] = time.perf_counter() - start
    del candidate
    gc.collect()

    metrics = {
        "votes": vote_summary(votes),
        "train": trained.metrics,
        "holdout": {"parent": parent_eval, "candidate": candidate_eval},
        "movement": movement(parent_scores, candidate_scores),
        "parent_digest": weights_digest(parent_dir),
        "digest": trained.digest,
        "refresh": refreshed,
        "timings": timings,
    }
    return RoundResult(trained.checkpoint_dir, trained.digest, metrics, votes)
