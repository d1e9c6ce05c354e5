"""Deterministic reasoning mode: greedy reasoning up to the box, then the answer digits there.

Runs on a reasoning-marked tiny model with Qwen's vocabulary (random weights: its greedy answers
hold no box, so the box is opened after them) and on the answer-only tiny model."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from app.quality.boxed import BOX_OPEN, append_continuations, box_prefixes
from app.quality.loading import load_model
from app.quality.model import serving_mode

THINK = 6  # greedy tokens per answer: enough to exercise the path, cheap on CPU


@pytest.fixture(scope="module")
def reasoning(tmp_path_factory):
    from app.demo.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("models") / "qwen-vocab", vocab="qwen")
    marker = path / "evoquality_tiny.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "reasoning": True}))
    return load_model(str(path), device="cpu")


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
    assert not boxed and tok.decode(forced) == "<think>cut off" + BOX_OPEN


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
