"""What the evaluate stage records for the gate: how far the candidate moved, the vote parse rate."""

from __future__ import annotations

import math

import pytest

from app.quality.evolution import movement
from app.quality.model import ScoreResult
from app.quality.voting import VoteResult
from workers.stages.evaluate import vote_parse_rate


def _scored(score: float | None, probs: list[float] | None) -> ScoreResult:
    return ScoreResult(score, 0.0, 1, 1, probs=probs)


def test_movement_is_mean_abs_score_change_and_answer_kl() -> None:
    uniform = [0.2] * 5
    peaked = [0.1, 0.1, 0.6, 0.1, 0.1]
    parent = {"a": _scored(3.0, uniform), "b": _scored(2.0, uniform), "c": _scored(4.0, None)}
    candidate = {"a": _scored(3.5, peaked), "b": _scored(2.0, uniform), "c": _scored(None, None)}
    moved = movement(parent, candidate)
    assert moved["images"] == 3
    assert moved["score_change"] == pytest.approx(0.25)  # (0.5 + 0) / 2: c has no candidate score
    kl = sum(p * math.log(p / 0.2) for p in peaked)
    assert moved["answer_kl"] == pytest.approx(kl / 2)


def test_an_identical_candidate_did_not_move() -> None:
    same = {"a": _scored(3.2, [0.1, 0.2, 0.4, 0.2, 0.1])}
    assert movement(same, dict(same)) == {"images": 1, "score_change": 0.0, "answer_kl": 0.0}


def test_sampled_scores_have_no_answer_distribution() -> None:
    moved = movement({"a": _scored(3.0, None)}, {"a": _scored(3.1, None)})
    assert moved["score_change"] == pytest.approx(0.1) and math.isnan(moved["answer_kl"])


def test_vote_parse_rate_counts_invalid_votes() -> None:
    rows = [VoteResult("a", "b", 5, 1, 2, 1.0), VoteResult("c", "d", 0, 0, 8, None)]
    assert vote_parse_rate(rows) == {"invalid_votes": 10, "vote_parse_rate": 6 / 16}
    assert vote_parse_rate([]) == {"invalid_votes": 0, "vote_parse_rate": None}
