import math

import pytest

from app.quality.reward import (
    FidelityReward,
    batch_fidelity_rewards,
    fidelity_rewards,
    format_reward,
    group_stats,
)

PHI_1 = 0.8413447460685429  # standard normal CDF at 1
GAMMA = 1e-6


def test_group_stats_uses_unbiased_variance_over_valid_scores():
    s = group_stats([4.0, None, 2.0])
    assert (s.mean, s.var, s.n_valid) == (3.0, 2.0, 2)
    assert group_stats([3.5]).var == 0.0
    assert group_stats([None, None]).n_valid == 0


def test_hand_computed_pair():
    # i: [4, 2] -> mu 3, var 2; j: [1, 3] -> mu 2, var 2; denominator sqrt(4 + gamma).
    # p(4 vs mu_j=2) = Phi(2 / sqrt(4 + g)), p(2 vs 2) = 0.5; j: Phi(-1), Phi(0.5 - 0.5).
    z = 2.0 / math.sqrt(4.0 + GAMMA)
    phi = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    assert phi == pytest.approx(PHI_1, abs=1e-6)
    r_i, r_j = fidelity_rewards([4.0, 2.0], [1.0, 3.0], 1.0)
    # p* = 1: r = sqrt(p); partner's target 0: r = sqrt(1 - p).
    assert r_i == pytest.approx([math.sqrt(phi), math.sqrt(0.5)])
    assert r_j == pytest.approx([math.sqrt(phi), math.sqrt(0.5)])

    r_i, r_j = fidelity_rewards([4.0, 2.0], [1.0, 3.0], 0.0)
    assert r_i == pytest.approx([math.sqrt(1 - phi), math.sqrt(0.5)])
    assert r_j == pytest.approx([math.sqrt(1 - phi), math.sqrt(0.5)])


def test_tie_label_rewards_uncertainty():
    z = 2.0 / math.sqrt(4.0 + GAMMA)
    phi = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    r_i, _ = fidelity_rewards([4.0, 2.0], [1.0, 3.0], 0.5)
    # p* = 0.5: r = sqrt(p/2) + sqrt((1-p)/2); exactly 1 at p = 0.5.
    assert r_i == pytest.approx([math.sqrt(phi / 2) + math.sqrt((1 - phi) / 2), 1.0])


def test_zero_variance_groups_saturate_through_gamma():
    # Both groups constant: z = (3 - 2) / sqrt(gamma) = 1000 -> p = 1 exactly.
    r_i, r_j = fidelity_rewards([3.0, 3.0], [2.0, 2.0], 1.0)
    assert r_i == pytest.approx([1.0, 1.0]) and r_j == pytest.approx([1.0, 1.0])
    r_i, r_j = fidelity_rewards([3.0, 3.0], [2.0, 2.0], 0.0)
    assert r_i == pytest.approx([0.0, 0.0], abs=1e-9) and r_j == pytest.approx([0.0, 0.0], abs=1e-9)
    # Identical constants: p = 0.5, so a hard label gets sqrt(1/2).
    r_i, _ = fidelity_rewards([3.0, 3.0], [3.0, 3.0], 1.0)
    assert r_i == pytest.approx([math.sqrt(0.5)] * 2)


def test_invalid_responses_get_zero_and_do_not_enter_statistics():
    with_invalid_i, with_invalid_j = fidelity_rewards([4.0, None, 2.0], [1.0, 3.0, None], 1.0)
    clean_i, clean_j = fidelity_rewards([4.0, 2.0], [1.0, 3.0], 1.0)
    assert with_invalid_i == pytest.approx([clean_i[0], 0.0, clean_i[1]])
    assert with_invalid_j == pytest.approx([clean_j[0], clean_j[1], 0.0])


def test_all_invalid_group_gives_no_comparison():
    r_i, r_j = fidelity_rewards([None, None], [2.0, 4.0], 1.0)
    assert r_i == [0.0, 0.0] and r_j == [0.0, 0.0]


def test_mean_over_partners_present():
    # Group 0 meets group 1 (p*=1) and group 2 (p*=0); group 3 is all invalid and is skipped.
    groups = [[4.0, 2.0], [1.0, 3.0], [1.0, 3.0], [None]]
    comparisons = [(0, 1, 1.0), (0, 2, 0.0), (0, 3, 1.0)]
    r = batch_fidelity_rewards(groups, comparisons)
    one, _ = fidelity_rewards([4.0, 2.0], [1.0, 3.0], 1.0)
    zero, _ = fidelity_rewards([4.0, 2.0], [1.0, 3.0], 0.0)
    assert r[0] == pytest.approx([(a + b) / 2 for a, b in zip(one, zero, strict=True)])
    assert r[3] == [0.0]


def test_p_star_out_of_range_raises():
    with pytest.raises(ValueError):
        fidelity_rewards([3.0], [2.0], 1.5)


def _completions(texts):
    return [[{"role": "assistant", "content": t}] for t in texts]


def test_trl_callable_groups_rows_by_pair_and_position():
    # Two pairs, G=2, rows in the order TRL delivers them (each row repeated G times), with
    # pair 1's rows interleaved out of order to show grouping does not rely on adjacency.
    texts = ["4", "2", "1", "3", "\\boxed{3}", "junk", "3.0", "2"]
    pair_id = [7, 7, 7, 7, 9, 9, 9, 9]
    position = [0, 0, 1, 1, 1, 0, 1, 0]
    p_star = [1.0] * 4 + [0.5] * 4
    logged = {}
    rewards = FidelityReward()(
        prompts=[None] * 8,
        completions=_completions(texts),
        pair_id=pair_id,
        position=position,
        p_star=p_star,
        log_metric=logged.__setitem__,
    )
    r_a, r_b = fidelity_rewards([4.0, 2.0], [1.0, 3.0], 1.0)
    assert rewards[:4] == pytest.approx(r_a + r_b)
    # pair 9: a = [None, 2.0], b = [3.0, 3.0], p* = 0.5
    s_a, s_b = fidelity_rewards([None, 2.0], [3.0, 3.0], 0.5)
    assert [rewards[5], rewards[7]] == pytest.approx(s_a)
    assert [rewards[4], rewards[6]] == pytest.approx(s_b)
    assert rewards[5] == 0.0
    assert logged["parse_rate"] == pytest.approx(7 / 8)
    assert format_reward(_completions(texts)) == [1, 1, 1, 1, 1, 0, 1, 1]


def test_trl_callable_rejects_a_split_pair():
    with pytest.raises(ValueError, match="only one image"):
        FidelityReward()(
            completions=_completions(["3", "4"]), pair_id=[1, 1], position=[0, 0], p_star=[1, 1]
        )
