"""Shared fixtures: a tiny Qwen2.5-VL model built once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # 2-core CI: torch's default thread count stalls shared machines


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random-weight tiny Qwen2.5-VL folder (small vocabulary, seed 0)."""
    from app.demo.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", vocab="small", seed=0)


@pytest.fixture(scope="session")
def tiny_answering_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model after a short format prior: answers one digit that depends on brightness."""
    from app.demo.answer_prior import teach_answer_format

    return teach_answer_format(tiny_model_dir, tmp_path_factory.mktemp("models") / "answering")


@pytest.fixture(scope="session")
def tiny_reasoning_dir(tmp_path_factory):
    """builtin:tiny-reasoning: Qwen's vocabulary and checkpoint layout, marked as a reasoning
    model, with the format prior (<think>...</think> of varying length, then \\boxed{})."""
    from app.demo.reasoning_prior import build_reasoning_model

    return build_reasoning_model(tmp_path_factory.mktemp("models") / "tiny-reasoning", seed=0)


@pytest.fixture(scope="session")
def tiny_reasoning_raw_dir(tmp_path_factory):
    """The same faithful folder with random weights (no prior): marked as a reasoning model."""
    from app.demo.tiny import build_tiny_model

    path = tmp_path_factory.mktemp("models") / "tiny-reasoning-raw"
    return build_tiny_model(path, vocab="qwen", reasoning=True, seed=0)


# trylast: after a shuffle (-p random_order), so the stable sort keeps the shuffled order within
# each group and still puts the longest module first.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Modules holding a `longest` test run first: under pytest-xdist (README's test command,
    `-n 2 --dist loadscope`) the demo rebuild then overlaps every other module instead of
    starting last."""
    first = {item.module.__name__ for item in items if item.get_closest_marker("longest")}
    # xdist hands each worker two modules at the start: the demo's companion on its worker
    # waits for the whole demo, so it is the quickest module there is.
    items.sort(
        key=lambda item: (
            item.module.__name__ not in first,
            item.module.__name__ != "tests.test_architecture",
        )
    )
