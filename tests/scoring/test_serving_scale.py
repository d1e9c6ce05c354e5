"""The model slot serves a version's map with its model: swap, rollback and a late first map."""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image

from app.calibration.service import VersionScale
from app.quality.calibration import ScoreMap
from app.quality.model import ScoreResult
from app.scoring.serving import ModelSlot, ScoreJob, Scorer


class FixedModel:
    """Scores every image with one raw score (enough to see which map served it)."""

    def __init__(self, raw: float) -> None:
        self.raw = raw

    def score(self, images, **_kwargs) -> list[ScoreResult]:  # noqa: ANN001
        return [ScoreResult(self.raw, 0.1, 1, 1) for _ in images]

    def serving_mode(self, task: str) -> str:
        """An answer-only model's default ("auto" jobs resolve to it)."""
        return "fast" if task == "score" else "logits"

    def close(self) -> None:
        """The slot closes a swapped-out model; this one holds nothing."""


MODELS = {"/v1": FixedModel(3.0), "/v2": FixedModel(4.0)}
# Version 2 scores half a point high: its map takes 4.0 to 3.5 (and stays strictly increasing).
SHIFT = VersionScale(
    ScoreMap((1.0, 4.0, 5.0), (1.0, 3.5, 4.5)), reference_version_id=1, anchor_set_id=1
)
IDENTITY = VersionScale(ScoreMap.identity(), reference_version_id=1, anchor_set_id=1)


def _serve_one(slot: ModelSlot):  # noqa: ANN202
    async def scenario():  # noqa: ANN202
        scorer = Scorer(slot, max_batch=4, max_wait_ms=1, max_queue=8)
        await scorer.batcher.start()
        try:
            return await scorer.submit(ScoreJob(Image.new("RGB", (8, 8))))
        finally:
            await scorer.batcher.stop()

    return asyncio.run(scenario())


def test_swap_and_rollback_move_model_and_map_together() -> None:
    slot = ModelSlot(lambda path: MODELS[path])
    assert slot.swap_to(1, "/v1", IDENTITY)
    first = _serve_one(slot)
    assert (first.version_id, first.raw_score, first.score, first.scale) == (1, 3.0, 3.0, 1)
    assert slot.swap_to(2, "/v2", SHIFT)
    second = _serve_one(slot)
    assert (second.version_id, second.raw_score, second.scale) == (2, 4.0, 1)
    assert second.score == pytest.approx(3.5)
    assert slot.swap_to(1, "/v1", IDENTITY)  # rollback
    back = _serve_one(slot)
    assert (back.version_id, back.score, back.scale) == (1, 3.0, 1)


def test_a_version_without_a_map_is_served_raw_until_its_map_arrives() -> None:
    slot = ModelSlot(lambda path: MODELS[path])
    assert slot.swap_to(2, "/v2")
    raw = _serve_one(slot)
    assert (raw.score, raw.raw_score, raw.scale) == (4.0, 4.0, None)
    slot.set_scale(1, IDENTITY)  # another version's map: ignored
    assert _serve_one(slot).scale is None
    slot.set_scale(2, SHIFT)
    late = _serve_one(slot)
    assert late.score == pytest.approx(3.5) and late.scale == 1
