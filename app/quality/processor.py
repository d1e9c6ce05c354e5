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
    """Stock AutoProcessor; without torchvision, the image-only processor of the checkpoint's
    family (local folder or hub id), which the stock one would fail over to anyway."""
    if not has_torchvision():
        # Stock loading reads the tokenizer before its video part fails: going straight to the
        # family's class halves the load (~1 s per load with Qwen's 151k-token vocabulary).
        try:
            family = of_checkpoint(source)
        except ValueError:
            family = None  # not a family of ours: stock loading says what it lacks
        if family is not None:
            return family.processor_class.from_pretrained(source)
    return AutoProcessor.from_pretrained(source)
