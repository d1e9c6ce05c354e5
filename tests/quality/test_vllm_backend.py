"""EVOQ_GENERATION_BACKEND=vllm against hf on the same head_dim-64 tiny model and the same pairs:
a round's voting (vote_chunk, on the model a worker loads for its round) in logits and sampled
mode, and fast scores.

Needs .venv-vllm (scripts/setup-vllm, which .ci/setup runs); skipped without it unless
CI_REQUIRE_VLLM is set, as .ci/run does, so CI cannot pass by skipping. The engine takes
30 s to 3 min to start on a small CPU."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.demo.answer_prior import AnswerPriorConfig, teach_answer_format
from app.demo.tiny import build_tiny_model
from app.quality.loading import load_model
from app.quality.model import ModelClosed
from app.quality.pairs import Pair
from app.quality.voting import VoteConfig, vote_chunk

VLLM_PYTHON = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"
if os.environ.get("CI_REQUIRE_VLLM") and not VLLM_PYTHON.exists():
    raise RuntimeError(
        f"CI_REQUIRE_VLLM is set but {VLLM_PYTHON} is missing: run scripts/setup-vllm"
    )
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not VLLM_PYTHON.exists(), reason="no .venv-vllm: run scripts/setup-vllm to test vLLM"
    ),
]
K = 32


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # vLLM's CPU attention needs head_dim 64 (the default tiny model has 16).
    root = tmp_path_factory.mktemp("vllm-models")
    tiny = build_tiny_model(
        root / "tiny64", hidden_size=128, num_attention_heads=2, num_key_value_heads=2,
        vision_hidden_size=128, vision_num_heads=2,
    )  # fmt: skip
    # Answers in format, so sampled votes parse and their shares say something.
    return teach_answer_format(tiny, root / "answering", AnswerPriorConfig(steps=60))


@pytest.fixture(scope="module")
def models(model_dir):
    from app.quality.vllm_backend import VLLMQualityModel
    from app.settings import get_settings
    from workers import model_cache

    # The loader a worker uses for a round's parent checkpoint, under the backend setting.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EVOQ_GENERATION_BACKEND", "vllm")
        env.setenv("EVOQ_VLLM_PYTHON", str(VLLM_PYTHON))
        get_settings.cache_clear()
        try:
            vllm_model = model_cache.cached_model(str(model_dir))
        finally:
            get_settings.cache_clear()
    assert isinstance(vllm_model, VLLMQualityModel)
    # The module's tests share this engine in any order, so none of them closes it: the cache
    # closes it here, after the last one, as a worker does before training.
    yield load_model(str(model_dir), device="cpu"), vllm_model
    model_cache.release_models()
    # A closed engine refuses calls (the API's swap and the worker's cache rely on it).
    with pytest.raises(ModelClosed):
        vllm_model.score([Image.new("RGB", (56, 56))])


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    return {
        k: Image.fromarray((np.full((56, 56, 3), rng.random()) * 255).astype("uint8"))
        for k in range(8)
    }


PAIRS = [Pair(a, b, False) for a, b in [(0, 1), (2, 3), (4, 5), (6, 7), (1, 6), (3, 4)]]


def test_logits_votes_and_fast_scores_match_hf(models, images):
    hf, vllm_model = models
    config = VoteConfig(k=K, mode="logits", chunk_size=len(PAIRS))
    exact = vote_chunk(hf, PAIRS, images.__getitem__, config, seed=0)
    served = vote_chunk(vllm_model, PAIRS, images.__getitem__, config, seed=0)
    for e, s in zip(exact, served, strict=True):
        assert s.p_first == pytest.approx(e.p_first, abs=1e-3)
        assert (s.votes_a, s.p_star) == (e.votes_a, e.p_star)
    fast = [images[k] for k in range(4)]
    for h, v in zip(hf.score(fast), vllm_model.score(fast), strict=True):
        assert v.score == pytest.approx(h.score, abs=1e-3)


def test_sampled_votes_agree_with_hf_in_distribution(models, images):
    hf, vllm_model = models
    config = VoteConfig(k=K, mode="sampled", chunk_size=len(PAIRS))
    by_hf = vote_chunk(hf, PAIRS, images.__getitem__, config, seed=1)
    by_vllm = vote_chunk(vllm_model, PAIRS, images.__getitem__, config, seed=1)
    exact = vote_chunk(hf, PAIRS, images.__getitem__, VoteConfig(mode="logits"), seed=0)
    for h, v, e in zip(by_hf, by_vllm, exact, strict=True):
        assert v.votes_a + v.votes_b + v.invalid == K
        # Both vote shares estimate the same probability: within ~4 standard errors of it.
        tolerance = 4 * np.sqrt(0.25 / K)
        assert abs(h.votes_a / K - e.p_first) < tolerance + h.invalid / K
        assert abs(v.votes_a / K - e.p_first) < tolerance + v.invalid / K
    invalid_hf, invalid_vllm = (
        sum(r.invalid for r in rs) / (K * len(rs)) for rs in (by_hf, by_vllm)
    )
    assert abs(invalid_hf - invalid_vllm) < 0.15, (invalid_hf, invalid_vllm)


def test_deterministic_reasoning_scores_match_hf(models, images):
    # Greedy reasoning up to the box, then the rating digits there: vLLM gets the answer so far
    # back as prompt text, HF as token ids; both read the same distribution.
    hf, vllm_model = models
    few = [images[k] for k in range(3)]
    options = {"mode": "deterministic", "reasoning": True, "max_new_tokens": 4}
    for h, v in zip(hf.score(few, **options), vllm_model.score(few, **options), strict=True):
        assert v.tokens == h.tokens and v.valid == h.valid
        assert v.score == pytest.approx(h.score, abs=1e-3)


def test_the_api_serves_scores_from_a_vllm_engine(models, model_dir, images, tmp_path):
    """EVOQ_SERVING_BACKEND=vllm: the API's slot loads a version through load_vllm_model (the
    module's engine stands in for a second one, 30 s to start) and batches score on it like on
    hf. It leaves the shared engine open (the other tests may run after it); the `models`
    fixture checks that a closed engine refuses calls."""
    import asyncio

    from app.quality import vllm_backend
    from app.scoring.lifecycle import serving_loader
    from app.scoring.serving import ModelSlot, ScoreJob, Scorer
    from app.settings import Settings

    hf, engine_model = models
    settings = Settings(serving_backend="vllm", vllm_python=VLLM_PYTHON, data_dir=tmp_path)
    asked = []

    def load_vllm_model(source, **options):  # noqa: ANN001, ANN202
        asked.append((source, options))
        return engine_model

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vllm_backend, "load_vllm_model", load_vllm_model)
        slot = ModelSlot(serving_loader(settings))
        assert slot.swap_to(1, str(model_dir))
    assert asked == [
        (
            str(model_dir),
            {
                "python": VLLM_PYTHON,
                "max_pixels": settings.max_pixels,
                "gpu_memory": settings.vllm_gpu_memory,
                "engines": 2,  # old and new engine overlap during a swap
            },
        )
    ]
    fast = [images[k] for k in range(3)]

    async def serve():  # noqa: ANN202
        scorer = Scorer(slot, max_batch=4, max_wait_ms=5, max_queue=8)
        await scorer.batcher.start()
        try:
            jobs = [ScoreJob(engine_model.preprocess(img)) for img in fast]
            return await asyncio.gather(*(scorer.submit(job) for job in jobs))
        finally:
            await scorer.batcher.stop()

    for served, exact in zip(asyncio.run(serve()), hf.score(fast), strict=True):
        assert served.version_id == 1
        assert served.raw_score == pytest.approx(exact.score, abs=1e-3)
