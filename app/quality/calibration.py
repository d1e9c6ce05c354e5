"""Score calibration: a strictly increasing map from a model version's raw scores onto a reference
scale, fitted on matched anchor images (isotonic regression), serialisable to JSON.

GRPO with a ranking reward fixes the order of images, not the scale; each version gets a map so
that clients can keep one threshold across versions. The map is isotonic regression blended with
a small share of the identity: isotonic alone has flat steps that would merge distinct raw scores
(ties break rankings); the blend keeps every step strictly increasing, so the order of any two
images is the same before and after the map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import isotonic_regression

SCORE_MIN, SCORE_MAX = 1.0, 5.0
# Share of the identity blended into the isotonic fit: small enough to cost ~1% of a point of
# residual, large enough that a flat isotonic step still separates distinct raw scores.
IDENTITY_SHARE = 0.01
MIN_ANCHORS = 8
# Raw anchor scores with less spread than this carry no order to map (a collapsed model).
MIN_RAW_STD = 1e-4
# A fitted map whose outputs spread less than this share of the targets' spread flattened the
# scale (raw scores unrelated or reversed against the reference): no usable calibration.
MIN_SPREAD_RATIO = 0.1


class CalibrationError(ValueError):
    """The raw scores cannot be mapped onto the reference scale (the reason says why)."""


@dataclass(frozen=True)
class ScoreMap:
    """A piecewise-linear, strictly increasing map on [1, 5]: raw scores are clipped to [1, 5]
    and linearly interpolated between the breakpoints (`xs` raw, `ys` calibrated)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    method: str = "isotonic"

    def __post_init__(self) -> None:
        if len(self.xs) != len(self.ys) or len(self.xs) < 2:
            raise ValueError("a score map needs at least two breakpoints, as many xs as ys")
        if np.any(np.diff(self.xs) <= 0) or np.any(np.diff(self.ys) <= 0):
            raise ValueError("score map breakpoints must be strictly increasing")

    def __call__(self, raw: float | None) -> float | None:
        """The calibrated score of one raw score (None stays None)."""
        if raw is None:
            return None
        return float(self.apply([raw])[0])

    def apply(self, raw: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated scores of many raw scores."""
        clipped = np.clip(np.asarray(raw, dtype=float), SCORE_MIN, SCORE_MAX)
        return np.interp(clipped, self.xs, self.ys)

    def to_json(self) -> dict:
        """A JSON-safe dict; `from_json` reads it back."""
        return {"method": self.method, "xs": list(self.xs), "ys": list(self.ys)}

    @classmethod
    def from_json(cls, data: dict) -> ScoreMap:
        """The map stored by `to_json`."""
        return cls(tuple(data["xs"]), tuple(data["ys"]), data.get("method", "isotonic"))

    @classmethod
    def identity(cls) -> ScoreMap:
        """The reference version's own map."""
        return cls((SCORE_MIN, SCORE_MAX), (SCORE_MIN, SCORE_MAX), "identity")


@dataclass(frozen=True)
class Calibration:
    """A fitted map and how well it fits: residual is the mean absolute error on the anchors
    (in score points), rmse its root-mean-square counterpart."""

    map: ScoreMap
    anchors: int
    residual: float
    rmse: float

    def summary(self) -> dict:
        """Numbers to record with a version (without the breakpoints)."""
        return {k: v for k, v in asdict(self).items() if k != "map"} | {"method": self.map.method}


def fit(raw: Sequence[float], target: Sequence[float]) -> Calibration:
    """Fit the map from `raw` scores onto `target` scores of the same anchors (same order).

    Raises CalibrationError when there are too few anchors, the raw scores collapsed, or the
    best monotone map flattens the scale."""
    x = np.clip(np.asarray(raw, dtype=float), SCORE_MIN, SCORE_MAX)
    y = np.clip(np.asarray(target, dtype=float), SCORE_MIN, SCORE_MAX)
    if x.shape != y.shape:
        raise ValueError(f"{len(x)} raw scores but {len(y)} targets")
    if len(x) < MIN_ANCHORS:
        raise CalibrationError(f"{len(x)} anchors scored; at least {MIN_ANCHORS} are needed")
    if float(np.std(x)) < MIN_RAW_STD:
        raise CalibrationError(
            f"raw scores collapsed (std {np.std(x):.2e} across {len(x)} anchors): no order to map"
        )
    # Equal raw scores must map to one value: pool them (mean target, weighted by count).
    xs, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    pooled = np.bincount(inverse, weights=y) / counts
    steps = isotonic_regression(pooled, weights=counts.astype(float), increasing=True).x
    # Extend to the whole [1, 5] range flat, then blend in the identity for strictness.
    xs = np.concatenate(([SCORE_MIN], xs, [SCORE_MAX]))
    steps = np.concatenate(([steps[0]], steps, [steps[-1]]))
    keep = np.concatenate(([True], np.diff(xs) > 0))  # a raw score at exactly 1 or 5
    xs, steps = xs[keep], steps[keep]
    ys = (1.0 - IDENTITY_SHARE) * steps + IDENTITY_SHARE * xs
    score_map = ScoreMap(tuple(map(float, xs)), tuple(map(float, ys)))
    fitted = score_map.apply(x)
    if float(np.std(fitted)) < MIN_SPREAD_RATIO * max(float(np.std(y)), MIN_RAW_STD):
        raise CalibrationError(
            "the best monotone map flattens the scale: raw scores do not follow the reference "
            f"(calibrated std {np.std(fitted):.3f} vs reference std {np.std(y):.3f})"
        )
    errors = fitted - y
    return Calibration(
        score_map,
        anchors=len(x),
        residual=float(np.mean(np.abs(errors))),
        rmse=float(np.sqrt(np.mean(errors**2))),
    )


def mean_abs_change(before: Sequence[float], after: Sequence[float]) -> float:
    """Mean absolute difference of two score lists over the same images (scale drift)."""
    a, b = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if a.shape != b.shape or not len(a):
        raise ValueError("scale drift needs two equally long, non-empty score lists")
    return float(np.mean(np.abs(a - b)))
