"""Qwen2.5-VL processor without torchvision (stock AutoProcessor always builds the video part)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from transformers import AutoProcessor, ProcessorMixin
from transformers.models.qwen2_5_vl import Qwen2_5_VLProcessor

# What a stock Qwen2.5-VL video processor needs to load on a machine that has torchvision.
_MINIMAL_VIDEO_PROCESSOR = {
    "video_processor_type": "Qwen2VLVideoProcessor",
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
}


class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """Qwen2_5_VLProcessor whose attributes are only image processor and tokenizer.

    ProcessorMixin reads its attribute list from this signature; `to_dict` still names the
    stock class (with a minimal video section) so saved folders load with stock AutoProcessor.
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["processor_class"] = "Qwen2_5_VLProcessor"
        output.setdefault("video_processor", dict(_MINIMAL_VIDEO_PROCESSOR))
        return output


def has_torchvision() -> bool:
    """Whether torchvision can be imported (stock processors need it for video)."""
    return importlib.util.find_spec("torchvision") is not None


def load_processor(source: str | Path) -> ProcessorMixin:
    """Stock AutoProcessor; without torchvision, where that fails on the video part, the
    image-only Qwen2.5-VL processor (local folder or hub id)."""
    try:
        return AutoProcessor.from_pretrained(source)
    except ImportError:
        if has_torchvision():
            raise
    return ImageOnlyQwen2_5_VLProcessor.from_pretrained(source)
