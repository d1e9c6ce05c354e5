import math

import numpy as np
import pytest

from app.quality import metrics


def test_rank_correlations_hand_computed():
    # One swapped adjacent pair among 4: d^2 sum = 2 -> SRCC = 1 - 6*2/(4*15) = 0.8;
    # 5 concordant, 1 discordant of 6 pairs -> KRCC = 4/6.
    pred = [1.0, 2.0, 4.0, 3.0]
    ref = [10.0, 20.0, 30.0, 40.0]
    assert metrics.srcc(pred, ref) == pytest.approx(0.8)
    assert metrics.krcc(pred, ref) == pytest.approx(4 / 6)


def test_plcc_raw_matches_formula():
    x = np.array([1.0, 2.0, 3.0, 5.0])
    y = np.array([2.0, 1.0, 4.0, 3.0])
    xc, yc = x - x.mean(), y - y.mean()
    expected = (xc @ yc) / math.sqrt((xc @ xc) * (yc @ yc))
    assert metrics.plcc(x, y) == pytest.approx(expected)


def test_logistic_fit_linearises_a_sigmoid_and_keeps_direction():
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 5, 300)
    y = 4.0 / (1.0 + np.exp(-(x - 3.0) * 2.5)) + 1.0 + rng.normal(0, 0.05, 300)
    raw, fitted = metrics.plcc(x, y), metrics.plcc_logistic(x, y)
    assert fitted > raw
    assert fitted > 0.99
    assert metrics.plcc_logistic(-x, y) == pytest.approx(-fitted, abs=1e-6)


def test_logistic_fit_failure_falls_back_to_raw():
    # Three points are too few for four parameters.
    s = metrics.summary([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert s["logistic_fit_ok"] is False
    assert s["plcc_logistic"] == pytest.approx(s["plcc"])


def test_constant_input_is_nan_not_an_error():
    s = metrics.summary([3.0, 3.0, 3.0, 3.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert s["n"] == 5
    assert all(math.isnan(s[k]) for k in ("srcc", "krcc", "plcc", "plcc_logistic"))


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        metrics.srcc([1.0, 2.0], [1.0, 2.0, 3.0])


def test_pairwise_accuracy_excludes_label_ties_and_halves_prediction_ties():
    pred = [0.9, 0.2, 0.5, 0.7, 0.5]
    p_star = [1.0, 1.0, 0.5, 0.0, 0.0]
    # counted: right, wrong, (label tie skipped), wrong, prediction tie = 0.5 -> 1.5/4
    assert metrics.pairwise_accuracy(pred, p_star) == pytest.approx(1.5 / 4)
    assert metrics.pairwise_accuracy(pred, p_star, pred_tie_counts=0.0) == pytest.approx(1 / 4)
    assert math.isnan(metrics.pairwise_accuracy([0.3], [0.5]))


def test_pairwise_accuracy_with_soft_labels_uses_their_side():
    assert metrics.pairwise_accuracy([0.8, 0.3], [0.6, 0.1]) == 1.0
