"""The gate refuses a candidate that did not move from its parent, or that too few holdout pairs
judged; each with its reason in the record."""

from __future__ import annotations

import pytest

from app.rounds.gate import as_json, decide
from app.rounds.schemas import RoundConfigIn

# A candidate that is better than its parent on plenty of pairs and clearly moved.
GOOD = {
    "candidate_holdout_accuracy": 0.8,
    "parent_holdout_accuracy": 0.75,
    "parse_rate": 1.0,
    "score_std": 0.5,
    "holdout_pairs": 400,
    "score_change": 0.04,
    "answer_kl": 2e-3,
}


def _decide(metrics: dict, **config) -> tuple[bool, dict]:  # noqa: ANN003
    passed, checks = decide({**GOOD, **metrics}, RoundConfigIn(**config))
    return passed, {c.name: c for c in checks}


def test_a_candidate_that_moved_on_enough_pairs_passes() -> None:
    passed, checks = _decide({})
    assert passed
    assert checks["changed"].passed and checks["holdout_pairs"].passed


def test_the_reported_no_op_is_rejected_as_unchanged() -> None:
    # The case: KL 2e-8 on 2 holdout pairs was promoted.
    passed, checks = _decide({"answer_kl": 2e-8, "score_change": 1e-5, "holdout_pairs": 2})
    assert not passed
    assert not checks["changed"].passed and not checks["holdout_pairs"].passed
    record = as_json(passed, list(checks.values()), "auto", "rejected")
    reasons = "\n".join(record["reasons"])
    assert "changed: unchanged: mean |score change| 1e-05" in reasons
    assert "judged on 2 labelled holdout pairs (at least 50 needed)" in reasons


@pytest.mark.parametrize(
    ("change", "kl", "passed"),
    [
        (2e-3, 0.0, True),  # the score moved, the answer distribution barely
        (0.0, 5e-6, True),  # the distribution moved, its mean did not
        (5e-4, 5e-7, False),  # neither above its threshold
        (None, None, False),  # not measured: no evidence the candidate changed
    ],
)
def test_change_needs_one_measure_above_its_threshold(change, kl, passed) -> None:
    ok, checks = _decide({"score_change": change, "answer_kl": kl})
    assert checks["changed"].passed is passed and ok is passed


def test_thresholds_come_from_the_round_config() -> None:
    metrics = {"score_change": 0.01, "answer_kl": 1e-4, "holdout_pairs": 30}
    assert not _decide(metrics)[0]  # 30 pairs < the default 50
    assert _decide(metrics, min_holdout_pairs=30)[0]
    passed, checks = _decide(metrics, min_holdout_pairs=30, min_score_change=0.05,
                             min_answer_kl=1e-3)  # fmt: skip
    assert not passed and checks["changed"].threshold == 0.05


def test_missing_holdout_count_is_rejected() -> None:
    passed, checks = _decide({"holdout_pairs": None})
    assert not passed and checks["holdout_pairs"].value is None
