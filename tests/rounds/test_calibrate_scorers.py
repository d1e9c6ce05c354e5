"""The calibrate stage's scorers stay usable when the worker's cache switches models: with
EVOQ_GENERATION_BACKEND=vllm it keeps one engine and closes the parent's to load the
candidate's, and calibration scores the parent again after the candidate."""

from types import SimpleNamespace

import pytest

from app.quality.model import ModelClosed
from app.settings import get_settings
from workers import model_cache
from workers.stages.calibrate import serving_scorer


class FakeEngine:
    """Scores every image with its own value and refuses calls once closed, like a vLLM engine."""

    def __init__(self, value: float) -> None:
        self.value, self.closed = value, False

    def serving_mode(self, task: str) -> str:
        return "fast"

    def score(self, images: list, mode: str = "fast") -> list:
        if self.closed:
            raise ModelClosed("this vLLM engine was closed")
        return [SimpleNamespace(score=self.value) for _ in images]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def one_engine_cache(monkeypatch):
    loads = []

    def load(path: str) -> FakeEngine:
        loads.append(path)
        return FakeEngine({"parent": 1.0, "candidate": 2.0}[path])

    monkeypatch.setenv("EVOQ_GENERATION_BACKEND", "vllm")
    get_settings.cache_clear()
    monkeypatch.setattr(model_cache, "_load", load)
    model_cache.release_models()
    yield loads
    model_cache.release_models()
    get_settings.cache_clear()


def test_the_parent_scores_again_after_the_candidate_closed_its_engine(one_engine_cache):
    parent, candidate = serving_scorer("parent"), serving_scorer("candidate")
    images = [object(), object()]
    assert parent(images) == [1.0, 1.0]
    assert candidate(images) == [2.0, 2.0]  # closes the parent's engine
    assert parent(images) == [1.0, 1.0]
    assert one_engine_cache == ["parent", "candidate", "parent"]


def test_a_scorer_bound_to_a_fetched_model_fails_after_a_switch(one_engine_cache):
    # Why the stage fetches at each call: the model in hand is closed by the next load.
    from app.calibration.anchors import raw_serving_scores

    parent = raw_serving_scores(model_cache.cached_model("parent"))
    model_cache.cached_model("candidate")
    with pytest.raises(ModelClosed):
        parent([object()])
