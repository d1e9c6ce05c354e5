import numpy as np
import pytest
import torch
from PIL import Image

from app.demo.tiny import build_tiny_model
from app.quality.images import PreparedImage
from app.quality.loading import load_model
from app.quality.sampling import SamplingParams, sample_continuations


def _images(seed: int, sizes, brightness=None) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    gains = [1.0] * len(sizes) if brightness is None else brightness
    return [
        Image.fromarray((rng.random((h, w, 3)) * 255 * g).astype(np.uint8))
        for (h, w), g in zip(sizes, gains, strict=True)
    ]


MIXED = [(56, 56), (100, 80), (200, 150), (64, 128), (90, 90)]


def test_fast_batch_matches_one_by_one_on_mixed_sizes(answering):
    # Different brightness per image: the format prior's scores follow brightness.
    images = _images(0, MIXED, brightness=[0.2, 1.0, 0.5, 0.8, 0.35])
    batched = answering.score(images)
    single = [answering.score([img])[0] for img in images]
    for b, s in zip(batched, single, strict=True):
        assert b.score == pytest.approx(s.score, abs=1e-4)
        assert b.std == pytest.approx(s.std, abs=1e-4)
    # The trained model's scores differ between images, so the comparison above means something.
    assert np.ptp([r.score for r in batched]) > 0.05


def test_fast_is_deterministic_and_in_range(tiny):
    images = _images(1, MIXED)
    first, second = tiny.score(images), tiny.score(images)
    assert [r.score for r in first] == [r.score for r in second]
    for r in first:
        assert 1.0 <= r.score <= 5.0 and 0.0 <= r.std <= 2.0
        assert (r.valid, r.n, r.texts) == (1, 1, None)


def test_fast_follows_brightness_after_the_format_prior(answering):
    dark, bright = Image.new("RGB", (56, 56), (30, 30, 30)), Image.new("RGB", (56, 56), "white")
    low, high = answering.score([dark, bright])
    assert high.score > low.score + 1.0


def test_sampled_scores_parse_with_counts_texts_and_seed(answering):
    images = _images(2, MIXED[:3])
    results = answering.score(images, mode="sampled", n=16, seed=3, return_texts=True)
    again = answering.score(images, mode="sampled", n=16, seed=3, return_texts=True)
    assert [r.texts for r in results] == [r.texts for r in again]
    for r in results:
        assert r.n == 16 and len(r.texts) == 16
        assert 12 <= r.valid <= 16
        assert 1.0 <= r.score <= 5.0
        parsed = [float(t) for t in r.texts if t.strip() in "12345" and t.strip()]
        assert r.score == pytest.approx(np.mean(parsed))
        assert r.std == pytest.approx(np.std(parsed))
    # Explicit temperature 1 overrides the shipped top_k=1 config: samples differ.
    assert any(len(set(r.texts)) > 1 for r in results)


def test_sampled_without_valid_answers_reports_none(tiny):
    # The random model's greedy answer holds no digit (it repeats a newline): nothing parses.
    (result,) = tiny.score(_images(4, [(56, 56)]), mode="sampled", n=4, temperature=0,
                           return_texts=True)  # fmt: skip
    assert not any(ch.isdigit() for text in result.texts for ch in text)
    assert (result.score, result.std, result.valid, result.n) == (None, 0.0, 0, 4)


def test_saved_and_reloaded_model_scores_the_same(answering, tmp_path):
    images = _images(5, MIXED)
    answering.model.save_pretrained(tmp_path / "copy")
    answering.processor.save_pretrained(tmp_path / "copy")
    reloaded = load_model(str(tmp_path / "copy"), device="cpu")
    # The copy has no tiny-model marker (so it defaults to reasoning): ask both in fast mode.
    fast = zip(
        answering.score(images, mode="fast"), reloaded.score(images, mode="fast"), strict=True
    )
    for a, b in fast:
        assert a.score == pytest.approx(b.score, abs=1e-6)


def test_shared_prefill_decoding_matches_hf_generate(tmp_path):
    # A wider init gives a random model varied greedy continuations to compare token by token.
    qm = load_model(str(build_tiny_model(tmp_path / "wide", initializer_range=0.3)), device="cpu")
    inputs = qm.encode("score", True, [[img] for img in _images(6, MIXED[:3])])
    # EOS suppressed too, so every continuation runs all 10 decode steps on both sides.
    never = qm.suppress_ids + qm.eos_ids
    params = SamplingParams(
        max_new_tokens=10,
        temperature=0,
        eos_token_ids=qm.eos_ids,
        suppress_token_ids=never,
    )
    ours = sample_continuations(qm.model, inputs, [2, 1, 3], params)
    with torch.inference_mode():
        out = qm.model.generate(
            **inputs, do_sample=False, max_new_tokens=10, repetition_penalty=1.0,
            suppress_tokens=never, eos_token_id=qm.eos_ids,
            temperature=None, top_p=None, top_k=None,
        )  # fmt: skip
    reference = out[:, inputs["input_ids"].shape[1] :].tolist()
    assert len({tuple(r) for r in reference}) == 3
    for row, seqs in enumerate(ours):
        for seq in seqs:
            assert seq == reference[row] and len(seq) == 10


def test_vision_tokens_are_never_sampled(tiny):
    inputs = tiny.encode("score", True, [[img] for img in _images(7, [(56, 56), (56, 56)])])
    base = dict(max_new_tokens=8, temperature=1.5, eos_token_ids=[])
    gen = torch.Generator().manual_seed(0)
    free = sample_continuations(tiny.model, inputs, [64, 64], SamplingParams(**base), gen)
    gen = torch.Generator().manual_seed(0)
    guarded = sample_continuations(
        tiny.model,
        inputs,
        [64, 64],
        SamplingParams(**base, suppress_token_ids=tiny.suppress_ids),
        gen,
    )
    vision = set(tiny.suppress_ids)
    assert any(t in vision for row in free for seq in row for t in seq)  # they would occur
    assert not any(t in vision for row in guarded for seq in row for t in seq)


@pytest.mark.parametrize("task", ["score", "compare"])
def test_fast_encoding_equals_the_processor(tiny, task):
    per_row = 1 if task == "score" else 2
    images = _images(8, MIXED + MIXED[:1])[: 3 * per_row]
    rows = [images[i : i + per_row] for i in range(0, len(images), per_row)]
    text = tiny._template(task, False)
    assert tiny._encoder.fast
    ours = tiny._encoder(text, rows)
    stock = tiny.processor(
        text=[text] * len(rows), images=images, padding=True, padding_side="left",
        return_tensors="pt",
    )  # fmt: skip
    assert set(ours) == set(stock.keys())
    for key, value in stock.items():
        assert torch.equal(ours[key], value), key


def test_prepared_images_encode_and_score_like_raw_ones(tiny, answering):
    images = _images(9, MIXED)
    raw = tiny.encode("score", False, [[img] for img in images])
    # Prepared here, raw, and prepared by another processor (its inputs, zeroed here, must be
    # ignored and recomputed), mixed in one batch.
    foreign = tiny.preprocess(images[2])
    foreign = PreparedImage(
        foreign.image, {k: torch.zeros_like(v) for k, v in foreign.vision.items()}, "another"
    )
    mixed = [tiny.preprocess(images[0]), images[1], foreign]
    mixed += [tiny.preprocess(img) for img in images[3:]]
    ours = tiny.encode("score", False, [[img] for img in mixed])
    assert set(ours) == set(raw)
    for key, value in raw.items():
        assert torch.equal(ours[key], value), key
    prepared = [answering.preprocess(img) for img in images]
    for a, b in zip(answering.score(prepared), answering.score(images), strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-6)


def test_max_pixels_only_lowers_the_processors_own_bound(tiny_model_dir):
    own = load_model(str(tiny_model_dir), device="cpu").max_pixels
    assert load_model(str(tiny_model_dir), device="cpu", max_pixels=own * 100).max_pixels == own
    lower = load_model(str(tiny_model_dir), device="cpu", max_pixels=own // 4)
    assert lower.max_pixels == own // 4
    assert lower.processor.image_processor.size["longest_edge"] == own // 4
