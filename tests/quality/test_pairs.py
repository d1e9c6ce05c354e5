import pytest

from app.quality.pairs import max_pairs, sample_pairs


def test_pairs_are_distinct_unordered_and_never_self():
    ids = [f"img{k}" for k in range(30)]
    pairs = sample_pairs(ids, 200, seed=3)
    assert len(pairs) == 200
    assert all(p.a != p.b for p in pairs)
    assert len({frozenset((p.a, p.b)) for p in pairs}) == 200
    assert {p.a for p in pairs} | {p.b for p in pairs} <= set(ids)


def test_every_pair_can_be_drawn():
    ids = list(range(6))
    pairs = sample_pairs(ids, max_pairs(6), seed=0)
    assert {frozenset((p.a, p.b)) for p in pairs} == {
        frozenset((i, j)) for i in ids for j in ids if i < j
    }
    # Both orders occur, so position is not tied to the id order.
    assert any(p.a > p.b for p in pairs) and any(p.a < p.b for p in pairs)


def test_holdout_fraction_and_determinism():
    ids = list(range(50))
    pairs = sample_pairs(ids, 100, holdout_fraction=0.2, seed=7)
    assert sum(p.holdout for p in pairs) == 20
    assert pairs == sample_pairs(ids, 100, holdout_fraction=0.2, seed=7)
    assert pairs != sample_pairs(ids, 100, holdout_fraction=0.2, seed=8)
    assert sum(p.holdout for p in sample_pairs(ids, 10, holdout_fraction=0.01)) == 1
    assert not any(p.holdout for p in sample_pairs(ids, 10))


def test_large_pool_does_not_enumerate_all_pairs():
    pairs = sample_pairs(list(range(200_000)), 1000, holdout_fraction=0.1, seed=1)
    assert len({frozenset((p.a, p.b)) for p in pairs}) == 1000


def test_invalid_requests_raise():
    with pytest.raises(ValueError):
        sample_pairs([1, 2, 3], 4)
    with pytest.raises(ValueError):
        sample_pairs([1, 1, 2], 1)
    with pytest.raises(ValueError):
        sample_pairs([1, 2, 3], 2, holdout_fraction=1.0)
