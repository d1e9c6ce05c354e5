"""Load a vision-language model from a folder, a hub id or "builtin:<name>" as a QualityModel."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForImageTextToText

from app.quality.builtins import resolve_model_source
from app.quality.marker import MARKER, reasoning_default
from app.quality.model import QualityModel
from app.quality.processor import load_processor

DEFAULT_MAX_PIXELS = 448 * 448


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


PROMPT_MARKER = MARKER  # the tiny models' settings, copied to every checkpoint trained from one


def copy_prompt_marker(parent: str | Path, child: str | Path) -> None:
    """A checkpoint trained from a tiny model keeps its answer-only prompting default."""
    marker = Path(parent) / PROMPT_MARKER
    if marker.is_file() and not (Path(child) / PROMPT_MARKER).exists():
        shutil.copyfile(marker, Path(child) / PROMPT_MARKER)


def load_bounded_processor(source: str, max_pixels: int | None) -> tuple[Any, int]:
    """The checkpoint folder's processor with its pixel bound lowered to max_pixels, and that
    bound; load_model uses it, and so does a process that only prepares inputs."""
    return bound_processor(load_processor(source), max_pixels)


def bound_processor(processor: Any, max_pixels: int | None) -> tuple[Any, int]:
    """`processor`, changed in place: left padding and its pixel bound lowered to max_pixels;
    returns it and that bound."""
    # Left padding, as every decoder-only batch here is padded: TRL pads prompt ids left but
    # takes mm_token_type_ids from `processor(...)`, and right-padded types misplace the image
    # tokens' rope positions in every row shorter than the longest (Qwen3-VL raises on it).
    processor.tokenizer.padding_side = "left"
    size = processor.image_processor.size
    # max_pixels only lowers the processor's own bound: a model trained on small images
    # (the demo model sees 56x56) must not be fed more image tokens than it ever saw.
    own_bound = size.get("longest_edge") or DEFAULT_MAX_PIXELS
    max_pixels = own_bound if max_pixels is None else min(max_pixels, own_bound)
    processor.image_processor.size = {
        "shortest_edge": min(size.get("shortest_edge") or max_pixels, max_pixels),
        "longest_edge": max_pixels,
    }
    return processor, max_pixels


def load_model(
    source: str,
    *,
    device: str = "auto",
    dtype: str | torch.dtype = "auto",
    max_pixels: int | None = None,
    cache_dir: Path | str | None = None,
    batch_size: int = 8,
    reasoning: bool | None = None,
) -> QualityModel:
    """Load a Hugging Face image-text-to-text model from a folder, a hub id or "builtin:<name>".

    max_pixels caps every image (and the image processor's own bound); None keeps the
    processor's bound. reasoning=None: on for real models, off for tiny test models.
    """
    if source.startswith("builtin:"):
        if cache_dir is None:
            raise ValueError("builtin models need a cache_dir to be built into")
        source = resolve_model_source(source, Path(cache_dir))
    torch_device = _resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, torch_device)
    model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch_dtype)
    model.to(torch_device).eval()
    processor, max_pixels = load_bounded_processor(source, max_pixels)
    return QualityModel(
        model,
        processor,
        source=source,
        device=torch_device,
        max_pixels=max_pixels,
        reasoning_default=reasoning_default(source) if reasoning is None else reasoning,
        batch_size=batch_size,
    )
