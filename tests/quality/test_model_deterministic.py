"""Deterministic reasoning mode: greedy reasoning up to the box, then the answer digits there;
strict parsing of reasoning answers; the served default of a reasoning model.

Runs on builtin:tiny-reasoning (format prior), on its random-weight twin (whose greedy answers
hold no box, so the box is opened after them) and on the answer-only tiny model."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from app.quality.boxed import BOX_OPEN, append_continuations, box_prefixes
from app.quality.loading import load_model
from app.quality.model import serving_mode
from app.quality.parsing import parse_score

THINK = 6  # greedy tokens per answer on the random model: enough to exercise the path


@pytest.fixture(scope="module")
def reasoning(tiny_reasoning_raw_dir):
    return load_model(str(tiny_reasoning_raw_dir), device="cpu")


@pytest.fixture(scope="module")
def fixture_model(tiny_reasoning_dir):
    return load_model(str(tiny_reasoning_dir), device="cpu")


def _images() -> list[Image.Image]:
    return [Image.new("RGB", (56 + 8 * i, 56), (40 * i, 90, 200 - 40 * i)) for i in range(3)]


def test_serving_mode_is_decided_by_the_reasoning_default():
    assert serving_mode("score", True) == serving_mode("compare", True) == "deterministic"
    assert (serving_mode("score", False), serving_mode("compare", False)) == ("fast", "logits")


def test_reasoning_model_scores_the_same_twice(reasoning):
    first = reasoning.score(_images(), mode="deterministic", max_new_tokens=THINK)
    second = reasoning.score(_images(), mode="deterministic", max_new_tokens=THINK)
    assert [r.score for r in first] == [r.score for r in second]
    for r in first:
        assert 1.0 <= r.score <= 5.0 and r.n == 1
        assert r.tokens == THINK  # no EOS in a random model's greedy answer: the full budget
        assert r.probs is not None and sum(r.probs) == pytest.approx(1.0)
        assert r.valid == 0  # its greedy answer wrote no box: the box was opened after it


def test_reasoning_default_scores_with_the_reasoning_prompt(reasoning, monkeypatch):
    asked = []
    encode = reasoning.encode

    def spy(task, use_reasoning, rows):  # noqa: ANN001, ANN202
        asked.append((task, use_reasoning))
        return encode(task, use_reasoning, rows)

    monkeypatch.setattr(reasoning, "encode", spy)
    served = reasoning.score(_images()[:1], max_new_tokens=THINK)
    assert asked and set(asked) == {("score", True)}  # the answer-only prompt is never asked
    explicit = reasoning.score(_images()[:1], mode="deterministic", max_new_tokens=THINK)
    assert served[0].score == explicit[0].score
    assert reasoning.score(_images()[:1], mode="fast")[0].score != served[0].score


def test_reasoning_compare_is_deterministic_over_both_orders(reasoning):
    a, b, _ = _images()
    one = reasoning.compare([(a, b), (b, a)], mode="deterministic", max_new_tokens=THINK)
    two = reasoning.compare([(a, b), (b, a)], mode="deterministic", max_new_tokens=THINK)
    assert [r.p_first for r in one] == [r.p_first for r in two]
    assert one[0].p_first == pytest.approx(1.0 - one[1].p_first, abs=1e-5)
    assert one[0].tokens == 2 * THINK and one[0].mode == "deterministic"
    assert one[0].invalid == 2  # neither order's greedy answer boxed itself


def test_answer_only_model_keeps_its_fast_numbers(answering):
    images = _images()
    fast = [r.score for r in answering.score(images, mode="fast")]
    assert [r.score for r in answering.score(images)] == fast  # the served default
    assert [r.score for r in answering.score(images, mode="deterministic")] == fast
    pairs = [(images[0], images[1])]
    logits = answering.compare(pairs, mode="logits")[0].p_first
    assert answering.compare(pairs)[0].p_first == logits


def test_box_prefix_ends_at_the_last_box_opening(reasoning):
    tok = reasoning.processor.tokenizer
    text = "<think>maybe \\boxed{2}, no: sharper</think> \\boxed{3.25}"
    (prefix,), (boxed,) = box_prefixes(tok, [tok.encode(text, add_special_tokens=False)])
    assert (
        boxed and tok.decode(prefix) == "<think>maybe \\boxed{2}, no: sharper</think> " + BOX_OPEN
    )
    (forced,), (boxed,) = box_prefixes(
        tok, [tok.encode("<think>cut off", add_special_tokens=False)]
    )
    assert not boxed and tok.decode(forced) == "<think>cut off </think> " + BOX_OPEN
    (closed,), _ = box_prefixes(tok, [tok.encode("<think>a</think> 3", add_special_tokens=False)])
    assert tok.decode(closed) == "<think>a</think> 3 " + BOX_OPEN


def test_append_continuations_left_pads_the_grown_rows():
    inputs = {
        "input_ids": torch.tensor([[0, 5, 6], [7, 8, 9]]),
        "attention_mask": torch.tensor([[0, 1, 1], [1, 1, 1]]),
        "mm_token_type_ids": torch.tensor([[0, 1, 0], [1, 0, 0]]),
        "pixel_values": torch.ones(2, 4),
    }
    out = append_continuations(inputs, [[1, 2, 3], [4]], pad=0)
    assert out["input_ids"].tolist() == [[5, 6, 1, 2, 3], [0, 7, 8, 9, 4]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]]
    assert out["mm_token_type_ids"].tolist() == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]]
    assert out["pixel_values"] is inputs["pixel_values"]


def test_fixture_serves_the_same_deterministic_score_twice(fixture_model):
    images = _images()[:2]
    assert (
        fixture_model.reasoning_default and fixture_model.serving_mode("score") == "deterministic"
    )
    first = fixture_model.score(images, max_new_tokens=48)  # the served default
    second = fixture_model.score(images, mode="deterministic", max_new_tokens=48)
    assert [r.score for r in first] == [r.score for r in second]
    assert all(1.0 <= r.score <= 5.0 and 0 < r.tokens <= 48 for r in first)


def test_fixture_default_asks_the_reasoning_prompt(fixture_model, monkeypatch):
    asked = []
    encode = fixture_model.encode

    def spy(task, use_reasoning, rows):  # noqa: ANN001, ANN202
        asked.append((task, use_reasoning))
        return encode(task, use_reasoning, rows)

    monkeypatch.setattr(fixture_model, "encode", spy)
    fixture_model.score(_images()[:1], max_new_tokens=16)
    fixture_model.compare([tuple(_images()[:2])], max_new_tokens=16)
    assert set(asked) == {("score", True), ("compare", True)}


def test_fixture_sampled_answers_parse_only_from_their_box(fixture_model):
    (full,) = fixture_model.score(_images()[:1], mode="sampled", n=4, seed=0, return_texts=True)
    boxed = [t for t in full.texts if BOX_OPEN in t]
    assert boxed and full.valid == sum(parse_score(t, reasoning=True) is not None for t in boxed)
    # Cut off inside the monologue: whatever numbers the text holds, no sample is a score.
    (cut,) = fixture_model.score(_images()[:1], mode="sampled", n=4, seed=0, max_new_tokens=12,
                                 return_texts=True)  # fmt: skip
    assert all(BOX_OPEN not in t for t in cut.texts)
    assert (cut.valid, cut.score) == (0, None)
