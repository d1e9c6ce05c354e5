"""Jobs in "auto" mode run in the serving model's own mode; the result names the mode."""

from __future__ import annotations

import asyncio

from PIL import Image

from app.quality.model import CompareResult, QualityModel, ScoreResult
from app.scoring.serving import CompareJob, ModelSlot, ScoreJob, Scorer


class RecordingModel:
    """Answers every call and records the mode it was asked in."""

    def __init__(self, reasoning: bool) -> None:
        self.reasoning_default = reasoning
        self.modes: list[str] = []

    serving_mode = QualityModel.serving_mode  # the one rule the real models use

    def score(self, images, mode, **_kwargs) -> list[ScoreResult]:  # noqa: ANN001
        self.modes.append(mode)
        return [ScoreResult(3.0, 0.1, 1, 1, tokens=7 if mode == "deterministic" else 0)
                for _ in images]  # fmt: skip

    def compare(self, pairs, mode, **_kwargs) -> list[CompareResult]:  # noqa: ANN001
        self.modes.append(mode)
        return [CompareResult(0.5, 0, 0, 0, mode) for _ in pairs]

    def close(self) -> None:
        """Nothing to release."""


def _serve(model: RecordingModel, *jobs):  # noqa: ANN002, ANN202
    slot = ModelSlot(lambda _path: model)
    assert slot.swap_to(1, "/m")

    async def scenario():  # noqa: ANN202
        scorer = Scorer(slot, max_batch=1, max_wait_ms=1, max_queue=8)
        await scorer.batcher.start()
        try:
            return [await scorer.submit(job) for job in jobs]
        finally:
            await scorer.batcher.stop()

    return asyncio.run(scenario())


def _image() -> Image.Image:
    return Image.new("RGB", (8, 8))


def test_auto_serves_a_reasoning_model_deterministically() -> None:
    model = RecordingModel(reasoning=True)
    score, compare = _serve(model, ScoreJob(_image()), CompareJob(_image(), _image()))
    assert model.modes[-2:] == ["deterministic", "deterministic"]
    assert (score.mode, score.result.tokens) == ("deterministic", 7)
    assert compare.mode == "deterministic"


def test_auto_serves_an_answer_only_model_fast() -> None:
    model = RecordingModel(reasoning=False)
    score, compare = _serve(model, ScoreJob(_image()), CompareJob(_image(), _image()))
    assert model.modes[-2:] == ["fast", "logits"]
    assert (score.mode, compare.mode) == ("fast", "logits")


def test_an_explicit_mode_is_kept() -> None:
    model = RecordingModel(reasoning=True)
    (score,) = _serve(model, ScoreJob(_image(), mode="fast"))
    assert model.modes[-1] == "fast" and score.mode == "fast"
