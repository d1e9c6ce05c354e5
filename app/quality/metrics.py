"""Agreement between predicted quality and references: SRCC, PLCC, KRCC, pairwise accuracy."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

__all__ = [
    "fit_logistic4",
    "krcc",
    "logistic4",
    "pairwise_accuracy",
    "plcc",
    "plcc_logistic",
    "srcc",
    "summary",
]


def _arrays(pred: Sequence[float], ref: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(pred, dtype=float)
    y = np.asarray(ref, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"pred and ref must be 1-D of equal length, got {x.shape} and {y.shape}")
    return x, y


def _degenerate(x: np.ndarray, y: np.ndarray) -> bool:
    # A correlation is undefined for fewer than two points or a constant input.
    return len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0


def srcc(pred: Sequence[float], ref: Sequence[float]) -> float:
    """Spearman rank correlation; NaN when undefined (constant input or < 2 points)."""
    x, y = _arrays(pred, ref)
    return math.nan if _degenerate(x, y) else float(stats.spearmanr(x, y).statistic)


def krcc(pred: Sequence[float], ref: Sequence[float]) -> float:
    """Kendall rank correlation (tau-b); NaN when undefined."""
    x, y = _arrays(pred, ref)
    return math.nan if _degenerate(x, y) else float(stats.kendalltau(x, y).statistic)


def plcc(pred: Sequence[float], ref: Sequence[float]) -> float:
    """Pearson linear correlation on raw predictions; NaN when undefined."""
    x, y = _arrays(pred, ref)
    return math.nan if _degenerate(x, y) else float(stats.pearsonr(x, y).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The standard 4-parameter logistic of IQA papers: (b1 - b2) / (1 + exp(-(x - b3)/|b4|)) + b2."""
    z = np.clip(-(x - b3) / (abs(b4) + 1e-12), -500.0, 500.0)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def fit_logistic4(pred: Sequence[float], ref: Sequence[float]) -> np.ndarray | None:
    """Least-squares fit of logistic4 mapping pred to ref; None when the fit fails."""
    x, y = _arrays(pred, ref)
    if _degenerate(x, y) or len(x) < 4:
        return None
    # Initial guess from the data range (as in the VQEG/IQA reference code): the curve
    # spans [min ref, max ref], centred on the mean prediction, slope ~ the prediction spread.
    p0 = [float(y.max()), float(y.min()), float(np.mean(x)), float(np.std(x)) or 1.0]
    if stats.pearsonr(x, y).statistic < 0:
        p0[0], p0[1] = p0[1], p0[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(logistic4, x, y, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return params if np.all(np.isfinite(params)) else None


def _fitted_plcc(x: np.ndarray, y: np.ndarray, params: np.ndarray | None) -> float:
    if params is None:
        return plcc(x, y)
    # A free logistic can be decreasing and would turn an anti-correlated predictor into a
    # positive PLCC; keep the direction so a model that ranks backwards still reads negative.
    direction = 1.0 if params[0] >= params[1] else -1.0
    return direction * plcc(logistic4(x, *params), y)


def plcc_logistic(pred: Sequence[float], ref: Sequence[float]) -> float:
    """PLCC after the 4-parameter logistic fit, signed by the fit's direction.

    Falls back to raw PLCC if the fit fails; `summary` reports whether it succeeded.
    """
    x, y = _arrays(pred, ref)
    return _fitted_plcc(x, y, fit_logistic4(x, y))


def pairwise_accuracy(
    pred_p_first: Sequence[float], p_star: Sequence[float], *, pred_tie_counts: float = 0.5
) -> float:
    """Fraction of pairs where the predicted preference agrees with the label p*.

    Pairs with p* = 0.5 (label ties) are excluded. A prediction of exactly 0.5 counts as
    `pred_tie_counts` (half right by default). NaN when no untied pair remains.
    """
    p, t = _arrays(pred_p_first, p_star)
    keep = t != 0.5
    if not keep.any():
        return math.nan
    p, t = p[keep], t[keep]
    right = np.where(p == 0.5, pred_tie_counts, ((p > 0.5) == (t > 0.5)).astype(float))
    return float(right.mean())


def summary(pred: Sequence[float], mos: Sequence[float]) -> dict[str, float | int | bool]:
    """SRCC, KRCC, PLCC raw and logistic-fitted of predictions against MOS, plus n and fit status."""
    x, y = _arrays(pred, mos)
    params = fit_logistic4(x, y)
    return {
        "n": int(len(x)),
        "srcc": srcc(x, y),
        "krcc": krcc(x, y),
        "plcc": plcc(x, y),
        "plcc_logistic": _fitted_plcc(x, y, params),
        "logistic_fit_ok": params is not None,
    }
