"""The models a worker process keeps loaded between tasks."""

from __future__ import annotations

import contextlib

from app.quality.model import QualityModel
from app.scoring.lifecycle import model_loader
from app.settings import get_settings

_models: dict[str, QualityModel] = {}


def _load(checkpoint_path: str) -> QualityModel:
    settings = get_settings()
    if settings.generation_backend == "vllm":
        # A new engine per checkpoint: each round votes with its own parent's weights.
        from app.quality.vllm_backend import load_vllm_model

        # One engine alive at a time (cached_model closes the old one first): it may take the
        # whole budget.
        return load_vllm_model(
            checkpoint_path,
            python=settings.vllm_python,
            max_pixels=settings.max_pixels,
            gpu_memory=settings.vllm_gpu_memory,
            engines=1,
        )
    return model_loader(settings)(checkpoint_path)


def _drop(checkpoint_path: str) -> None:
    _models.pop(checkpoint_path).close()  # a vLLM engine process holds its own memory


def kept_models(backend: str) -> int:
    """How many models a worker keeps loaded: two with hf (parent and candidate while
    evaluating); one vLLM engine, closed before the next starts, so engines never share a GPU."""
    return 1 if backend == "vllm" else 2


def cached_model(checkpoint_path: str) -> QualityModel:
    """The model of a checkpoint, loaded once per worker process (see kept_models)."""
    if checkpoint_path not in _models:
        while len(_models) >= kept_models(get_settings().generation_backend):
            _drop(next(iter(_models)))
        _models[checkpoint_path] = _load(checkpoint_path)
    return _models[checkpoint_path]


def release_models() -> None:
    """Drop the loaded models (and the GPU cache) before training needs the memory."""
    for path in list(_models):
        _drop(path)
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
