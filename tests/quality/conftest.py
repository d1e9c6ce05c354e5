"""Loaded tiny models shared by the scoring and comparing tests of a module."""

from __future__ import annotations

import pytest

from app.quality.loading import load_model


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """The random tiny model (rarely answers in format)."""
    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def answering(tiny_answering_model_dir):
    """The tiny model fine-tuned to answer a single digit."""
    return load_model(str(tiny_answering_model_dir), device="cpu")
