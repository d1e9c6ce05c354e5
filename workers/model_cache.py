"""The models a worker process keeps loaded between tasks."""

from __future__ import annotations

import contextlib

from app.quality.model import QualityModel
from app.scoring.lifecycle import model_loader
from app.settings import get_settings

_models: dict[str, QualityModel] = {}


def cached_model(checkpoint_path: str) -> QualityModel:
    """The model of a checkpoint, loaded once per worker process (two kept at most)."""
    if checkpoint_path not in _models:
        while len(_models) >= 2:
            _models.pop(next(iter(_models)))
        _models[checkpoint_path] = model_loader(get_settings())(checkpoint_path)
    return _models[checkpoint_path]


def release_models() -> None:
    """Drop the loaded models (and the GPU cache) before training needs the memory."""
    _models.clear()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
