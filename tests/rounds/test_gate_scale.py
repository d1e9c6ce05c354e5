"""The gate's score-scale checks: a candidate whose map cannot fit, or fits badly, is rejected."""

from __future__ import annotations

from app.rounds.gate import decide
from app.rounds.schemas import RoundConfigIn

PASSING = {
    "candidate_holdout_accuracy": 0.8,
    "parent_holdout_accuracy": 0.8,
    "parse_rate": 1.0,
    "score_std": 0.5,
    "holdout_pairs": 200,
    "score_change": 0.05,
    "answer_kl": 1e-3,
}


def _checks(metrics: dict, **config) -> tuple[bool, dict]:  # noqa: ANN003
    passed, checks = decide({**PASSING, **metrics}, RoundConfigIn(**config))
    return passed, {c.name: c for c in checks}


def test_a_fitted_map_within_the_residual_passes_and_drift_is_recorded() -> None:
    passed, checks = _checks(
        {"calibration_fit": True, "calibration_residual": 0.2, "scale_drift_raw": 0.6}
    )
    assert passed
    assert checks["scale_calibration"].value == 0.2
    assert checks["scale_calibration"].threshold == 1.0
    assert checks["scale_drift_raw"].passed and checks["scale_drift_raw"].value == 0.6


def test_a_map_that_cannot_fit_rejects_the_candidate() -> None:
    passed, checks = _checks(
        {
            "calibration_fit": False,
            "calibration_residual": None,
            "calibration_error": "raw scores collapsed",
            "scale_drift_raw": 1.4,
        }
    )
    assert not passed
    assert not checks["scale_calibration"].passed
    assert "raw scores collapsed" in checks["scale_calibration"].detail


def test_a_residual_above_the_limit_rejects_the_candidate() -> None:
    passed, checks = _checks(
        {"calibration_fit": True, "calibration_residual": 0.4, "scale_drift_raw": 0.1},
        max_calibration_residual=0.3,
    )
    assert not passed and not checks["scale_calibration"].passed
