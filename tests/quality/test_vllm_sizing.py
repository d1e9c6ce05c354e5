"""vLLM engine sizing (dtype, context length, GPU share) and a worker's engine lifecycle,
without vLLM or a GPU: pure functions, and fake engines for the ordering."""

import json

import pytest

from app.quality import vllm_backend
from app.quality.vllm_engine import checkpoint_dtype, engine_dtype, engine_options
from app.quality.vllm_sizing import engine_share, image_tokens, max_model_len


def test_dtype_follows_the_checkpoint_on_cuda_and_stays_fp32_on_cpu():
    assert engine_dtype("float32", cuda=False) == "float32"
    assert engine_dtype("bfloat16", cuda=False) == "float32"
    assert engine_dtype("float32", cuda=True) == "bfloat16"
    assert engine_dtype("bfloat16", cuda=True) == "bfloat16"
    assert engine_dtype("float16", cuda=True) == "float16"
    assert engine_dtype(None, cuda=True, bf16_supported=False) == "float16"


def test_checkpoint_dtype_and_engine_options(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"dtype": "bfloat16"}}))
    assert checkpoint_dtype(str(tmp_path)) == "bfloat16"
    gpu = engine_options(str(tmp_path), 1600, 0.4, cuda=True)
    assert (gpu["dtype"], gpu["max_model_len"], gpu["gpu_memory_utilization"]) == (
        "bfloat16",
        1600,
        0.4,
    )
    cpu = engine_options(str(tmp_path), 1600, 0.4, cuda=False)
    assert cpu["dtype"] == "float32" and "gpu_memory_utilization" not in cpu


def test_context_length_counts_images_at_the_pixel_bound_and_the_completion():
    assert image_tokens(448 * 448) == 256  # Qwen2.5-VL: 28x28 pixels per token
    assert image_tokens(1003520, patch_size=16, merge_size=2) == 980
    # 40 text tokens with 2 pads, each image 256 tokens, 1024 new: 40 + 2*255 + 1024 = 1574.
    assert max_model_len(40, 2, 256, 1024) == 1584
    assert max_model_len(40, 2, 256, 1024) >= 40 + 2 * 255 + 1024
    with pytest.raises(ValueError):
        image_tokens(0)


def test_engine_shares_never_add_up_past_the_budget():
    assert engine_share(0.9, 2) * 2 <= 0.9
    assert engine_share(0.9, 1) == 0.9
    for bad in ((0.0, 1), (1.2, 1), (0.5, 0)):
        with pytest.raises(ValueError):
            engine_share(*bad)


class _FakeEngine:
    def __init__(self, model_dir, python, max_model_len, gpu_share):
        self.args = (model_dir, max_model_len, gpu_share)

    def close(self):
        pass


def test_a_vllm_model_loads_only_the_processor_and_fits_its_longest_prompt(
    tiny_model_dir, monkeypatch
):
    import transformers

    def no_weights(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the HF model must not be loaded beside a vLLM engine")

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", no_weights)
    monkeypatch.setattr(vllm_backend, "VLLMEngine", _FakeEngine)
    small = vllm_backend.load_vllm_model(
        str(tiny_model_dir), python="py", max_pixels=56 * 56, gpu_memory=0.8, engines=2
    )
    large = vllm_backend.load_vllm_model(
        str(tiny_model_dir), python="py", max_pixels=448 * 448, gpu_memory=0.8, engines=1,
        max_new_tokens=1024,
    )  # fmt: skip
    assert small.engine.args[2] == pytest.approx(0.4) and large.engine.args[2] == 0.8
    # Two images (compare) at the pixel bound (the processor's own caps it), 1024 new tokens,
    # and the prompt's text.
    per_image = image_tokens(large.max_pixels)
    assert large.max_pixels > small.max_pixels and per_image > image_tokens(small.max_pixels)
    assert 2 * per_image + 1024 < large.engine.args[1] < 2 * per_image + 1024 + 400
    assert small.model is None and large.model is None


class _Lifecycle:
    """Fake engines recording how many are alive at once."""

    def __init__(self):
        self.alive, self.most, self.events = set(), 0, []

    def load(self, path):  # noqa: ANN001, ANN201
        self.alive.add(path)
        self.most = max(self.most, len(self.alive))
        self.events.append(("start", path))
        lifecycle = self

        class Model:
            def close(self):  # noqa: ANN202
                lifecycle.alive.discard(path)
                lifecycle.events.append(("close", path))

        return Model()


@pytest.mark.parametrize(("backend", "most"), [("vllm", 1), ("hf", 2)])
def test_a_worker_never_runs_two_engines_at_once(backend, most, monkeypatch):
    from app.settings import get_settings
    from workers import model_cache

    fake = _Lifecycle()
    monkeypatch.setenv("EVOQ_GENERATION_BACKEND", backend)
    get_settings.cache_clear()
    monkeypatch.setattr(model_cache, "_load", fake.load)
    monkeypatch.setattr(model_cache, "_models", {})
    try:
        # A round: vote on the parent, evaluate parent then candidate, sample the candidate.
        for path in ("parent", "parent", "candidate", "candidate"):
            model_cache.cached_model(path)
        model_cache.release_models()
    finally:
        get_settings.cache_clear()
    assert fake.most == most and not fake.alive
    if backend == "vllm":
        assert fake.events == [
            ("start", "parent"), ("close", "parent"), ("start", "candidate"), ("close", "candidate"),
        ]  # fmt: skip
