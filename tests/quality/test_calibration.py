"""The score calibration map: hand-checkable fits, strict monotonicity, JSON, cannot-fit cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.quality.calibration import (
    CalibrationError,
    ScoreMap,
    fit,
    mean_abs_change,
)


def test_a_constant_shift_is_undone() -> None:
    # The candidate scores every anchor 0.5 higher than the reference: the map subtracts 0.5
    # (up to the 1% identity share: 0.99 * (x - 0.5) + 0.01 * x = x - 0.495).
    target = np.linspace(1.5, 4.0, 11)
    calibration = fit(target + 0.5, target)
    assert calibration.map(3.0) == pytest.approx(2.505)
    assert calibration.residual == pytest.approx(0.005, abs=1e-9)
    assert calibration.anchors == 11


def test_a_stretch_is_undone() -> None:
    # Raw = 3 + 2 * (ref - 3): the candidate spreads scores twice as wide around 3.
    target = np.linspace(2.0, 4.0, 9)
    calibration = fit(3 + 2 * (target - 3), target)
    assert calibration.map(5.0) == pytest.approx(0.99 * 4.0 + 0.01 * 5.0)
    assert calibration.map(1.0) == pytest.approx(0.99 * 2.0 + 0.01 * 1.0)
    assert calibration.map(3.0) == pytest.approx(3.0)


def test_isotonic_pools_a_local_reversal() -> None:
    # Raw order 1.5 < 2 < 2.5 but targets 2, 3, 2.5 (a reversal): isotonic pools the last two
    # to 2.75; the identity share then separates them again.
    raw = [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 4.8]
    target = [2.0, 3.0, 2.5, 3.2, 3.4, 3.8, 4.2, 4.4]
    score_map = fit(raw, target).map
    assert score_map(2.0) == pytest.approx(0.99 * 2.75 + 0.01 * 2.0)
    assert score_map(2.5) == pytest.approx(0.99 * 2.75 + 0.01 * 2.5)
    assert score_map(2.0) < score_map(2.5)


def test_rankings_never_change() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(1, 5, 256)
    target = np.clip(2 + 0.4 * raw + rng.normal(0, 0.6, 256), 1, 5)  # noisy, often reversed
    score_map = fit(raw, target).map
    probe = np.sort(np.concatenate([rng.uniform(0.5, 5.5, 2000), raw]))
    calibrated = score_map.apply(probe)
    inside = (probe > 1) & (probe < 5)
    # Strictly increasing inside [1, 5]: distinct raw scores never merge, never swap.
    assert np.all(np.diff(calibrated[inside]) > 0)
    assert np.all(np.diff(calibrated) >= 0)
    assert calibrated.min() >= 1 and calibrated.max() <= 5


def test_equal_raw_scores_get_one_value() -> None:
    raw = [2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 1.5, 4.5]
    target = [1.0, 3.0, 3.0, 3.0, 4.0, 4.0, 1.5, 4.5]
    score_map = fit(raw, target).map
    assert score_map(2.0) == pytest.approx(0.99 * 2.0 + 0.01 * 2.0)  # mean of 1 and 3


def test_the_map_round_trips_through_json() -> None:
    score_map = fit(np.linspace(1.2, 4.9, 20), np.linspace(1.0, 4.0, 20) ** 1.1).map
    again = ScoreMap.from_json(json.loads(json.dumps(score_map.to_json())))
    assert again == score_map
    assert again(3.3) == score_map(3.3)


def test_identity_maps_every_score_to_itself() -> None:
    identity = ScoreMap.identity()
    assert identity(1.7) == pytest.approx(1.7)
    assert identity(None) is None
    assert identity(7.0) == 5.0  # clipped to the scale


def test_collapsed_raw_scores_cannot_fit() -> None:
    with pytest.raises(CalibrationError, match="collapsed"):
        fit([3.0] * 32, np.linspace(1, 5, 32))


def test_reversed_raw_scores_cannot_fit() -> None:
    # Anti-correlated: the best monotone map is a constant, which would flatten the scale.
    target = np.linspace(1, 5, 32)
    with pytest.raises(CalibrationError, match="flattens"):
        fit(6 - target, target)


def test_too_few_anchors_cannot_fit() -> None:
    with pytest.raises(CalibrationError, match="at least"):
        fit([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])


def test_breakpoints_must_increase() -> None:
    with pytest.raises(ValueError):
        ScoreMap((1.0, 3.0, 5.0), (1.0, 1.0, 5.0))


def test_mean_abs_change() -> None:
    assert mean_abs_change([1.0, 2.0, 4.0], [1.5, 1.0, 4.0]) == pytest.approx(0.5)
