"""The promotion gate: pure checks of a candidate's evaluation against its parent's."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from app.rounds.schemas import RoundConfigIn


@dataclass(frozen=True)
class Check:
    """One gate condition and how the candidate fared."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def decide(metrics: dict[str, Any], config: RoundConfigIn) -> tuple[bool, list[Check]]:
    """Whether the candidate may be promoted, and every check with its numbers.

    `metrics` holds candidate_holdout_accuracy, parent_holdout_accuracy, holdout_pairs,
    score_change, answer_kl, parse_rate, score_std, the calibration stage's calibration_fit,
    calibration_residual, scale_drift_raw and, when a probe set exists, candidate_probe_srcc
    and parent_probe_srcc."""
    checks: list[Check] = [_holdout_size(metrics, config), _changed(metrics, config)]
    cand, parent = (
        _num(metrics.get("candidate_holdout_accuracy")),
        _num(metrics.get("parent_holdout_accuracy")),
    )
    if cand is None or parent is None:
        checks.append(
            Check("holdout_accuracy", False, cand, None, "no labelled holdout pair to compare on")
        )
    else:
        floor = parent - config.accuracy_margin
        checks.append(
            Check(
                "holdout_accuracy",
                cand >= floor,
                cand,
                floor,
                f"candidate {cand:.3f} vs parent {parent:.3f} (margin {config.accuracy_margin})",
            )
        )
    parse_rate = _num(metrics.get("parse_rate"))
    checks.append(
        Check(
            "parse_rate",
            parse_rate is not None and parse_rate >= config.min_parse_rate,
            parse_rate,
            config.min_parse_rate,
            "share of sampled scores that parsed",
        )
    )
    spread = _num(metrics.get("score_std"))
    checks.append(
        Check(
            "score_spread",
            spread is not None and spread >= config.min_score_std,
            spread,
            config.min_score_std,
            "std of mean scores across images (a collapse to one value fails)",
        )
    )
    if "calibration_fit" in metrics:
        checks.extend(_scale_checks(metrics, config))
    cand_srcc, parent_srcc = (
        _num(metrics.get("candidate_probe_srcc")),
        _num(metrics.get("parent_probe_srcc")),
    )
    if "candidate_probe_srcc" in metrics:
        floor = None if parent_srcc is None else parent_srcc - config.srcc_margin
        checks.append(
            Check(
                "probe_srcc",
                cand_srcc is not None and (floor is None or cand_srcc >= floor),
                cand_srcc,
                floor,
                f"SRCC against the probe set's MOS (parent {parent_srcc})",
            )
        )
    return all(c.passed for c in checks), checks


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _holdout_size(metrics: dict[str, Any], config: RoundConfigIn) -> Check:
    pairs = _num(metrics.get("holdout_pairs"))
    return Check(
        "holdout_pairs",
        pairs is not None and pairs >= config.min_holdout_pairs,
        pairs,
        config.min_holdout_pairs,
        f"judged on {pairs if pairs is not None else 'no'} labelled holdout pairs "
        f"(at least {config.min_holdout_pairs} needed)",
    )


def _changed(metrics: dict[str, Any], config: RoundConfigIn) -> Check:
    """A candidate that did not move from its parent is a no-op round, not an improvement."""
    change, kl = _num(metrics.get("score_change")), _num(metrics.get("answer_kl"))
    moved_score = change is not None and change >= config.min_score_change
    moved_answer = kl is not None and kl >= config.min_answer_kl
    detail = (
        f"mean |score change| {_fmt(change)} (min {config.min_score_change}), answer KL "
        f"{_fmt(kl)} (min {config.min_answer_kl}) from the parent on the holdout images"
    )
    if not (moved_score or moved_answer):
        detail = "unchanged: " + detail
    return Check("changed", moved_score or moved_answer, change, config.min_score_change, detail)


def _scale_checks(metrics: dict[str, Any], config: RoundConfigIn) -> list[Check]:
    residual = _num(metrics.get("calibration_residual"))
    fitted = bool(metrics.get("calibration_fit")) and residual is not None
    limit = config.max_calibration_residual
    return [
        Check(
            "scale_calibration",
            fitted and residual <= limit,
            residual,
            limit,
            "mean abs error on the anchors after the candidate's map onto the reference scale"
            if fitted
            else f"calibration cannot fit: {metrics.get('calibration_error')}",
        ),
        Check(
            "scale_drift_raw",
            True,
            _num(metrics.get("scale_drift_raw")),
            None,
            "mean abs change of raw anchor scores from the parent, before the map (recorded)",
        ),
    ]


def as_json(passed: bool, checks: list[Check], policy: str, decision: str) -> dict[str, Any]:
    """The gate record stored on the round and shown by the API."""
    return {
        "passed": passed,
        "policy": policy,
        "decision": decision,
        "checks": [asdict(c) for c in checks],
        "reasons": [f"{c.name}: {c.detail}" for c in checks if not c.passed],
    }
