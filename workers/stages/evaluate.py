"""Stage 4: measure candidate and parent for the gate."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from app.corpus import service as corpus
from app.db import session_scope
from app.quality.images import open_image
from app.quality.metrics import srcc
from app.rounds import service as rounds
from app.rounds.models import Round
from workers.heartbeat import cancel_requested, heartbeat
from workers.model_cache import cached_model
from workers.stages import NextTasks
from workers.state import load_round, round_image_loader, votes


def evaluate(round_id: int) -> NextTasks:
    """Measure candidate and parent on the holdout pairs in the serving mode (the prompt GRPO
    trained, for a reasoning model), how far the candidate moved from its parent there, the
    candidate's parse rate and spread, and both on the probe set when one is registered."""
    from app.quality.evolution import evaluate_on_pairs, holdout_scores, movement

    loaded = load_round(round_id, "evaluating")
    if loaded is None:
        return []
    config, parent_path = loaded
    with session_scope() as db:
        candidate_path = db.get(Round, round_id).progress["checkpoint"]
        probe = rounds.get_active_probe_set(db=db)
        probe_items = (
            [(str(Path(probe.path) / name), mos) for name, mos in sorted(probe.labels.items())]
            if probe
            else []
        )
        trainable = [image.sha256 for image in corpus.get_trainable(db=db)]
    holdout = votes(round_id, holdout=True)
    metrics: dict[str, Any] = vote_parse_rate(holdout + votes(round_id, holdout=False))
    eval_shas = random.Random(config.seed).sample(
        trainable, min(config.eval_images, len(trainable))
    )
    load = round_image_loader(config, {k for v in holdout for k in (v.a, v.b)} | set(eval_shas))
    scored = {}
    with heartbeat(round_id):
        for role, path in (("parent", parent_path), ("candidate", candidate_path)):
            model = cached_model(path)
            mode = model.serving_mode("score")  # what the API serves for this model
            scored[role] = holdout_scores(model, holdout, load, mode=mode, seed=config.seed)
            on_pairs = evaluate_on_pairs(
                model, holdout, load, mode=mode, seed=config.seed, scores=scored[role]
            )
            metrics[f"{role}_holdout_accuracy"] = on_pairs["score_accuracy"]
            metrics[f"{role}_holdout_compare_accuracy"] = on_pairs["compare_accuracy"]
            metrics["holdout_pairs"] = on_pairs["pairs"]
            metrics["eval_mode"] = mode
            # The mode alone does not name the prompt: deterministic is the answer-only
            # prompt for an answer-only model.
            metrics["eval_prompt"] = (
                "reasoning" if model.reasoning_default and mode != "fast" else "answer-only"
            )
            if probe_items:
                scores = model.score([open_image(p) for p, _ in probe_items], mode=mode)
                metrics[f"{role}_probe_srcc"] = srcc(
                    [s.score for s in scores], [m for _, m in probe_items]
                )
            if cancel_requested(round_id):
                break
        if len(scored) == 2:
            moved = movement(scored["parent"], scored["candidate"])
            metrics["holdout_images"] = moved["images"]
            metrics["score_change"] = moved["score_change"]
            metrics["answer_kl"] = moved["answer_kl"]
        sampled = cached_model(candidate_path).score(
            [load(s) for s in eval_shas], mode="sampled", n=config.eval_samples, seed=config.seed
        )
    valid = sum(s.valid for s in sampled)
    means = [s.score for s in sampled if s.score is not None]
    metrics["parse_rate"] = valid / max(1, sum(s.n for s in sampled))
    metrics["score_std"] = float(np.std(means)) if len(means) > 1 else 0.0
    metrics["probe_set"] = probe.name if probe else None
    with session_scope() as db:
        found = db.get(Round, round_id)
        found.gate = {**(found.gate or {}), "metrics": finite(metrics)}
    if not cancel_requested(round_id):
        return [("evoq.rounds.calibrate", [round_id])]
    return []


def vote_parse_rate(rows: list) -> dict[str, Any]:
    """Share of the round's votes that parsed: invalid votes are stored per pair and left out
    of p* (logits votes count as their K expected votes, all valid); None without votes."""
    invalid = sum(v.invalid or 0 for v in rows)
    total = sum(v.votes_a + v.votes_b for v in rows) + invalid
    return {
        "invalid_votes": invalid,
        "vote_parse_rate": (total - invalid) / total if total else None,
    }


def finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe metrics: NaN becomes None."""
    return {
        k: (None if isinstance(v, float) and v != v else v)  # noqa: PLR0124 - NaN check
        for k, v in values.items()
    }
