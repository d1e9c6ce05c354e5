"""Load a checkpoint's processor, with or without torchvision (stock AutoProcessor always
builds the video part, which needs it; the family's image-only processor does not)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from transformers import AutoProcessor, ProcessorMixin

from app.quality.families import of_checkpoint
from app.quality.families.qwen2_5_vl import ImageOnlyQwen2_5_VLProcessor

__all__ = ["ImageOnlyQwen2_5_VLProcessor", "has_torchvision", "load_processor"]


def has_torchvision() -> bool:
    """Whether torchvision can be imported (stock processors need it for video)."""
    return importlib.util.find_spec("torchvision") is not None


def load_processor(source: str | Path) -> ProcessorMixin:
    """Stock AutoProcessor; without torchvision, where that fails on the video part, the
    image-only processor of the checkpoint's family (local folder or hub id)."""
    try:
        return AutoProcessor.from_pretrained(source)
    except (ImportError, ValueError) as error:
        # Qwen2.5-VL's video processor raises ImportError; Qwen3-VL's auto class a ValueError
        # naming torchvision.
        if has_torchvision() or (isinstance(error, ValueError) and "torchvision" not in str(error)):
            raise
    return of_checkpoint(source).processor_class.from_pretrained(source)
