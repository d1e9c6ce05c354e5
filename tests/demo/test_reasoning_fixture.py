"""builtin:tiny-reasoning, the faithful fixture of a reasoning checkpoint (issue 26)."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, Qwen2VLImageProcessorPil

from app.demo import reasoning_prior
from app.demo.tiny import CHAT_TEMPLATE, QWEN_7B_PREPROCESSOR, build_tiny_model
from app.quality.images import prepare_image
from app.quality.loading import DEFAULT_MAX_PIXELS, load_model
from app.quality.parsing import parse_choice, parse_score
from app.quality.processor import load_processor
from app.quality.sampling import SamplingParams, sample_continuations

IMAGE_PAD = 151655
_BOXED_NUMBER = re.compile(r"</think>.*\\boxed\{\s*\d+(?:\.\d+)?\s*\}", re.S)


@pytest.fixture(scope="module")
def raw(tiny_reasoning_raw_dir):
    """The random-weight fixture loaded once, capped at the service's default pixel bound."""
    return load_model(str(tiny_reasoning_raw_dir), max_pixels=DEFAULT_MAX_PIXELS)


@pytest.fixture(scope="module")
def prior(tiny_reasoning_dir):
    """The fixture with its format prior, loaded once at the service's default pixel bound."""
    return load_model(str(tiny_reasoning_dir), max_pixels=DEFAULT_MAX_PIXELS)


def _images(seed: int, count: int, size: int = 64) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [reasoning_prior._image(rng, size)[0] for _ in range(count)]


def test_folder_has_the_real_checkpoint_layout(tiny_reasoning_raw_dir):
    names = {p.name for p in tiny_reasoning_raw_dir.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "chat_template.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors",
        "evoquality_tiny.json",
    } <= names
    # transformers 5 would write these instead; the real checkpoint has neither.
    assert not names & {"processor_config.json", "chat_template.jinja"}
    pre = json.loads((tiny_reasoning_raw_dir / "preprocessor_config.json").read_text())
    assert pre == QWEN_7B_PREPROCESSOR
    assert (pre["min_pixels"], pre["max_pixels"]) == (3136, 12845056)
    template = json.loads((tiny_reasoning_raw_dir / "chat_template.json").read_text())
    assert template == {"chat_template": CHAT_TEMPLATE}
    marker = json.loads((tiny_reasoning_raw_dir / "evoquality_tiny.json").read_text())
    assert marker["reasoning"] is True and marker["vocab"] == "qwen"
    generation = json.loads((tiny_reasoning_raw_dir / "generation_config.json").read_text())
    assert (generation["top_k"], generation["top_p"], generation["temperature"]) == (1, 0.001, 0.1)
    assert generation["eos_token_id"] == [151645, 151643]


def test_loads_back_with_qwen_vocabulary_and_reasoning_default(tiny_reasoning_dir):
    model = AutoModelForImageTextToText.from_pretrained(tiny_reasoning_dir)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert model.get_input_embeddings().weight.shape[0] == 151936
    assert model.generation_config.top_k == 1  # near-greedy: the project must override it
    processor = load_processor(tiny_reasoning_dir)
    assert processor.chat_template == CHAT_TEMPLATE
    qm = load_model(str(tiny_reasoning_dir))
    assert qm.reasoning_default is True
    tok = qm.processor.tokenizer
    assert tok.encode("Hello world", add_special_tokens=False) == [9707, 1879]
    assert tok.convert_tokens_to_ids("<|im_start|>") == 151644
    assert qm.eos_ids == [151645, 151643]
    # Without a cap the loader keeps the 7B's own bound (issue 26, item 4).
    assert qm.max_pixels == 12845056


@pytest.mark.parametrize("size", [(1024, 768), (4000, 3000), (300, 200)])
def test_image_tokens_match_a_7b_processor_at_the_service_cap(raw, size):
    image = Image.new("RGB", size, "gray")
    inputs = raw.encode("score", True, [[image]])
    got = int((inputs["input_ids"] == IMAGE_PAD).sum())
    # A 7B's own processor (its shipped preprocessor_config.json) on the same capped image.
    fields = ("min_pixels", "max_pixels", "patch_size", "temporal_patch_size", "merge_size")
    real = Qwen2VLImageProcessorPil(**{k: QWEN_7B_PREPROCESSOR[k] for k in fields})
    grid = real(images=[prepare_image(image, DEFAULT_MAX_PIXELS)], return_tensors="pt")
    assert got == int(grid["image_grid_thw"].prod()) // 4
    assert got <= DEFAULT_MAX_PIXELS // (28 * 28)
    if size == (1024, 768):
        assert got == 252


def test_sampling_overrides_the_near_greedy_config(raw):
    (result,) = raw.score(
        _images(0, 1), mode="sampled", n=6, return_texts=True, seed=0, max_new_tokens=6
    )
    # top_k=1 from generation_config.json would make every sample the same.
    assert len(set(result.texts)) > 1


def _at(brightness: float, seed: int) -> Image.Image:
    """A textured 64x64 patch of the given brightness (what the prior was trained on)."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random(3) * 0.5 + 0.5) * (rng.random((64, 64, 1)) * 0.3 + 0.7) * brightness
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))


def test_score_answers_think_at_varying_length_then_box(prior):
    images = [_at(0.1, 1), _at(0.9, 2)]
    results = prior.score(
        images, mode="sampled", n=5, return_texts=True, seed=0, max_new_tokens=400
    )
    texts = [t for r in results for t in r.texts]
    assert all(t.startswith("<think>") for t in texts)
    boxed = [t for t in texts if _BOXED_NUMBER.search(t) and parse_score(t) is not None]
    assert len(boxed) >= 0.8 * len(texts)
    tok = prior.processor.tokenizer
    lengths = [len(tok.encode(t.split("</think>")[0], add_special_tokens=False)) for t in boxed]
    assert min(lengths) < 60 and max(lengths) > 120, lengths
    assert len({parse_score(t) for t in boxed}) > 1  # votes are not constant
    dark, bright = results
    assert dark.score < bright.score  # the prior reads brightness (weakly)


def test_greedy_answers_close_the_think_and_box_within_a_few_hundred_tokens(prior):
    # The service serves reasoning models greedily ("deterministic"); a real reasoning
    # checkpoint's greedy answer ends with a box, so the fixture's must too (no loop).
    images = [_at(b, seed) for seed, b in enumerate(np.linspace(0.05, 0.95, 8))]
    results = prior.score(images, mode="deterministic")
    assert sum(r.valid for r in results) >= 7, [r.valid for r in results]
    assert all(0 < r.tokens < 400 for r in results), [r.tokens for r in results]
    assert results[0].score < results[-1].score  # greedy answers read brightness too
    (pair,) = prior.compare([(images[0], images[-1])], mode="deterministic")
    assert pair.invalid == 0 and 0 < pair.tokens < 800, pair


def test_small_token_budgets_truncate_the_reasoning(prior):
    (result,) = prior.score(
        _images(2, 1), mode="sampled", n=4, return_texts=True, seed=0, max_new_tokens=12
    )
    assert all(t.startswith("<think>") and "\\boxed" not in t for t in result.texts)


def test_compare_answers_box_a_choice(prior):
    qm = prior
    dark, bright = _images(3, 2)
    rows = [(dark, bright), (bright, dark)]
    params = SamplingParams(max_new_tokens=400, eos_token_ids=qm.eos_ids)
    gen = torch.Generator().manual_seed(0)
    samples = sample_continuations(qm.model, qm.encode("compare", True, rows), [4, 4], params, gen)
    tok = qm.processor.tokenizer
    texts = [tok.decode(seq, skip_special_tokens=True) for seqs in samples for seq in seqs]
    boxed = [t for t in texts if re.search(r"</think>.*\\boxed\{[01]\}", t, re.S)]
    assert len(boxed) >= 0.8 * len(texts)
    assert {parse_choice(t) for t in boxed} <= {0, 1}


def test_shipped_prior_is_current(tiny_reasoning_dir):
    marker = json.loads((tiny_reasoning_dir / "evoquality_tiny.json").read_text())
    assert marker["prior"] == reasoning_prior.PRIOR_NAME
    # A prompt or architecture change makes the shipped asset stale (builds then train for
    # minutes): rebuild it with `python -m app.demo.reasoning_prior`.
    assert marker["prior_source"] == "asset"


def test_without_a_fitting_asset_the_prior_trains_only_its_rows(tiny_reasoning_raw_dir, tmp_path):
    # Other settings than the shipped asset's: it does not fit, so the prior trains.
    config = reasoning_prior.ReasoningPriorConfig(steps=2, chain_steps=2, negatives=256)
    path = build_tiny_model(
        tmp_path / "trained", vocab="qwen", prior=reasoning_prior.reasoning_prior(config)
    )
    assert json.loads((path / "evoquality_tiny.json").read_text())["prior_source"] == "trained"
    before = load_file(tiny_reasoning_raw_dir / "model.safetensors")
    after = load_file(path / "model.safetensors")
    name = next(k for k in before if k.endswith("embed_tokens.weight"))
    changed = (before[name] != after[name]).any(1).nonzero().squeeze(1)
    assert 50 < len(changed) < 1000  # the prior's own tokens; the other ~151k rows as built
    merger = "visual.merger.mlp.0.weight"
    assert not torch.equal(before[merger], after[merger])

    # The asset format round-trips onto the seeded init, and only for its own key.
    trained_model = AutoModelForImageTextToText.from_pretrained(path)
    data = reasoning_prior.asset_bytes(trained_model, changed, "key")
    model = AutoModelForImageTextToText.from_pretrained(tiny_reasoning_raw_dir)
    assert reasoning_prior.apply_asset(model, data, "other key") is False
    assert reasoning_prior.apply_asset(model, data, "key") is True
    expected = trained_model.state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_cli_writes_the_builtin(tiny_reasoning_dir, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["make-tiny-model", str(out), "--reasoning"])
    assert result.exit_code == 0, result.output
    for name in ("model.safetensors", "evoquality_tiny.json", "preprocessor_config.json"):
        assert (out / name).read_bytes() == (tiny_reasoning_dir / name).read_bytes()
