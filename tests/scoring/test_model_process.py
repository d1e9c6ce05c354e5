"""EVOQ_SCORING_PROCESS: the serving model in a child process answers like the model in this
process, survives its child dying, and stops for good once closed (a swap closes it)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from PIL import Image

from app.quality.loading import load_model
from app.quality.model import ModelClosed
from app.scoring.model_process import ProcessQualityModel
from app.scoring.serving import ModelSlot, ScoreJob, Scorer


def _images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(5)
    return [
        Image.fromarray((rng.random((60 + 8 * i, 70, 3)) * 255).astype("uint8")) for i in range(n)
    ]


@pytest.fixture(scope="module")
def remote(tiny_answering_model_dir):
    model = ProcessQualityModel(str(tiny_answering_model_dir), {"device": "cpu"})
    yield model
    model.close()


def test_scores_and_comparisons_match_the_model_in_this_process(remote, tiny_answering_model_dir):
    local = load_model(str(tiny_answering_model_dir), device="cpu")
    images = _images(5)
    assert remote.max_pixels == local.max_pixels
    # Prepared here (vision inputs included) and raw images both cross the pipe.
    prepared = [remote.preprocess(img) for img in images[:3]] + images[3:]
    for theirs, ours in zip(remote.score(prepared), local.score(images), strict=True):
        assert theirs.score == pytest.approx(ours.score, abs=1e-6)
    sampled = remote.score(images[:2], mode="sampled", n=4, seed=3)
    assert sampled == local.score(images[:2], mode="sampled", n=4, seed=3)
    pairs = [(images[0], images[1]), (images[2], images[3])]
    for theirs, ours in zip(remote.compare(pairs), local.compare(pairs), strict=True):
        assert theirs.p_first == pytest.approx(ours.p_first, abs=1e-6)


def test_a_child_that_dies_is_started_again(remote):
    before = remote._proc.pid
    remote._proc.kill()
    remote._proc.wait()
    assert remote.score(_images(1))[0].score is not None
    assert remote._proc.pid != before


def test_a_bad_call_is_an_error_not_a_dead_child(remote):
    with pytest.raises(RuntimeError, match="model process: ValueError"):
        remote.score(_images(1), mode="nonsense")
    assert remote.score(_images(1))[0].score is not None


def test_a_swap_closes_the_old_process_and_batches_move_to_the_new(tiny_answering_model_dir):
    slot = ModelSlot(lambda path: ProcessQualityModel(path, {"device": "cpu"}))
    assert slot.swap_to(1, str(tiny_answering_model_dir))
    first = slot.current.model
    assert slot.swap_to(2, str(tiny_answering_model_dir))
    assert first._proc is None  # stopped
    with pytest.raises(ModelClosed):
        first.score(_images(1))

    async def serve_on_a_stale_snapshot():  # noqa: ANN202
        scorer = Scorer(slot, max_batch=2, max_wait_ms=1, max_queue=4)
        # A batch that took the old version just before the swap retries on the new one.
        stale = type(slot.current)(1, str(tiny_answering_model_dir), first)
        direct = scorer._run_batch_on
        calls = []

        def run_on(loaded, jobs):  # noqa: ANN001, ANN202
            calls.append(loaded.version_id if loaded else None)
            return direct(stale if len(calls) == 1 else loaded, jobs)

        scorer._run_batch_on = run_on
        await scorer.batcher.start()
        try:
            return await scorer.submit(ScoreJob(_images(1)[0])), calls
        finally:
            await scorer.batcher.stop()

    served, calls = asyncio.run(serve_on_a_stale_snapshot())
    assert served.version_id == 2 and calls == [2, 2]
    slot.current.model.close()
