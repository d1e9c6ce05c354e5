import numpy as np
import pytest
from PIL import Image

from app.quality.loading import load_model
from app.quality.pairs import sample_pairs
from app.quality.voting import (
    VoteConfig,
    chunk_count,
    chunk_seed,
    label_from_probability,
    p_star_from_votes,
    vote_all,
    vote_chunk,
)


def test_hard_rule_is_the_papers_majority():
    assert p_star_from_votes(3, 1) == 1.0
    assert p_star_from_votes(1, 3) == 0.0
    assert p_star_from_votes(2, 2) == 0.5
    assert p_star_from_votes(0, 0) is None


def test_soft_label_and_confidence_filter():
    assert p_star_from_votes(3, 1, label="soft") == 0.75
    assert p_star_from_votes(3, 1, min_confidence=0.8) is None
    assert p_star_from_votes(1, 4, min_confidence=0.8) == 0.0
    assert p_star_from_votes(2, 2, min_confidence=0.5) == 0.5
    assert label_from_probability(0.62) == 1.0
    assert label_from_probability(0.5) == 0.5
    assert label_from_probability(0.62, "soft") == 0.62
    assert label_from_probability(0.38, min_confidence=0.7) is None


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        VoteConfig(k=0)
    with pytest.raises(ValueError):
        VoteConfig(min_confidence=0.3)


def test_chunk_seeds_are_stable_and_distinct():
    assert chunk_seed(5, 0) == chunk_seed(5, 0)
    assert len({chunk_seed(5, c) for c in range(100)} | {chunk_seed(6, 0)}) == 101
    assert chunk_count(10, 4) == 3 and chunk_count(8, 4) == 2


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return {
        f"img{k}": Image.fromarray((rng.random((56, 56, 3)) * 255 * (k + 1) / 6).astype("uint8"))
        for k in range(6)
    }


def test_sampled_votes_count_every_query_and_repeat_with_the_seed(tiny, images):
    pairs = sample_pairs(list(images), 5, holdout_fraction=0.2, seed=1)
    config = VoteConfig(k=6, mode="sampled", chunk_size=5)
    first = vote_chunk(tiny, pairs, images.__getitem__, config, seed=11)
    assert [(v.a, v.b, v.holdout) for v in first] == [(p.a, p.b, p.holdout) for p in pairs]
    assert all(v.votes_a + v.votes_b + v.invalid == 6 for v in first)
    for v in first:
        assert v.p_star == p_star_from_votes(v.votes_a, v.votes_b)
    assert vote_chunk(tiny, pairs, images.__getitem__, config, seed=11) == first


def test_resuming_votes_only_missing_chunks_and_matches_a_full_run(tiny, images):
    pairs = sample_pairs(list(images), 7, seed=2)
    config = VoteConfig(k=4, mode="sampled", chunk_size=3)
    full = vote_all(tiny, pairs, images.__getitem__, config, round_seed=9)
    assert len(full) == 7
    seen = []
    done = {1: full[3:6]}
    resumed = vote_all(
        tiny, pairs, images.__getitem__, config, 9, done=done, on_chunk=lambda i, r: seen.append(i)
    )
    assert seen == [0, 2]
    assert resumed == full


def test_logits_mode_reports_probability_as_expected_votes(tiny, images):
    pairs = sample_pairs(list(images), 4, seed=3)
    config = VoteConfig(k=32, mode="logits")
    results = vote_chunk(tiny, pairs, images.__getitem__, config, seed=0)
    for v in results:
        assert 0.0 < v.p_first < 1.0
        assert v.votes_a == round(32 * v.p_first) and v.votes_a + v.votes_b == 32
        assert v.invalid == 0
        assert v.p_star == label_from_probability(v.p_first)
    # The probability is about image a, whichever order the pair is stored in.
    swapped = [type(p)(p.b, p.a, p.holdout) for p in pairs]
    back = vote_chunk(tiny, swapped, images.__getitem__, config, seed=0)
    for v, w in zip(results, back, strict=True):
        assert w.p_first == pytest.approx(1.0 - v.p_first, abs=1e-5)
