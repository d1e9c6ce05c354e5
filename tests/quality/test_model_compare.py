import numpy as np
import pytest
from PIL import Image


def _pairs(seed: int, count: int, size: int = 56) -> list[tuple[Image.Image, Image.Image]]:
    rng = np.random.default_rng(seed)

    def image():
        level = rng.random()
        pixels = rng.random((size, size, 3)) * 0.3 * level + 0.7 * level
        return Image.fromarray((pixels * 255).astype(np.uint8))

    return [(image(), image()) for _ in range(count)]


def test_logits_probabilities_of_both_orders_sum_to_one(answering):
    pairs = _pairs(0, 6)
    forward = answering.compare(pairs)
    backward = answering.compare([(b, a) for a, b in pairs])
    for f, b in zip(forward, backward, strict=True):
        assert f.p_first + b.p_first == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= f.p_first <= 1.0 and f.mode == "logits"
    assert np.ptp([f.p_first for f in forward]) > 0.3  # pairs get different answers


def test_identical_images_are_a_coin_flip(answering):
    (img, _), = _pairs(1, 1)  # fmt: skip
    (result,) = answering.compare([(img, img)])
    assert result.p_first == pytest.approx(0.5, abs=1e-6)


def test_sampled_votes_approach_the_logits_probability(answering):
    pairs = _pairs(2, 6)
    exact = np.array([r.p_first for r in answering.compare(pairs)])
    errors = {}
    for k in (8, 1024):
        votes = answering.compare(pairs, mode="sampled", k=k, seed=0)
        for v in votes:
            assert v.votes_a + v.votes_b + v.invalid == k and v.mode == "sampled"
        errors[k] = np.abs(np.array([v.p_first for v in votes]) - exact)
    assert errors[1024].max() < 0.06
    assert errors[1024].mean() < errors[8].mean()


def test_sampled_votes_are_reproducible_with_a_seed(answering):
    pairs = _pairs(3, 3)
    first = answering.compare(pairs, mode="sampled", k=16, seed=7)
    assert first == answering.compare(pairs, mode="sampled", k=16, seed=7)


def test_invalid_votes_are_counted_not_guessed(tiny):
    # The random model rarely says "0" or "1": most votes are invalid and stay out of p_first.
    (result,) = tiny.compare(_pairs(4, 1), mode="sampled", k=64, seed=0)
    assert result.invalid > 50
    assert result.votes_a + result.votes_b + result.invalid == 64
    if result.votes_a + result.votes_b == 0:
        assert result.p_first == 0.5
    else:
        assert result.p_first == result.votes_a / (result.votes_a + result.votes_b)


def test_votes_share_one_prefill_per_order(answering):
    """32 votes of 2 pairs prefill at most 4 prompts once; only 1-token decode steps follow."""
    shapes = []
    hook = answering.model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["inputs_embeds"].shape[:2])),
        with_kwargs=True,
    )
    try:
        answering.compare(_pairs(5, 2), mode="sampled", k=32, seed=0, max_new_tokens=3)
    finally:
        hook.remove()
    prefills = [s for s in shapes if s[1] > 1]
    assert len(prefills) == 1 and prefills[0][0] <= 4
    assert all(s == (64, 1) for s in shapes if s[1] == 1) and len(shapes) > 1


def test_reasoning_votes_parse_boxed_answers_or_count_invalid(answering):
    (result,) = answering.compare(_pairs(6, 1), mode="sampled", k=4, seed=0, reasoning=True,
                                  max_new_tokens=6)  # fmt: skip
    assert result.votes_a + result.votes_b + result.invalid == 4
