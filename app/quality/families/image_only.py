"""Qwen-VL processors without torchvision: stock ones always build the video part, which needs it."""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import ProcessorMixin


class ImageOnlyProcessor:
    """Mixin for a stock Qwen-VL processor class whose attributes are only image processor and
    tokenizer. ProcessorMixin reads its attribute list from this __init__'s signature;
    `to_dict` still names the stock class (with a minimal video section of this family's patch
    size) so saved folders load with stock AutoProcessor where torchvision is installed."""

    stock_name: ClassVar[str]  # e.g. "Qwen2_5_VLProcessor"
    video_processor: ClassVar[dict[str, Any]]  # what the stock video processor needs to load

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)
        # Qwen3-VL's processor sets these after its super().__init__ and reads them per call.
        self.vision_start_token = "<|vision_start|>"
        self.vision_end_token = "<|vision_end|>"
        self.vision_start_token_id = tokenizer.convert_tokens_to_ids(self.vision_start_token)
        self.vision_end_token_id = tokenizer.convert_tokens_to_ids(self.vision_end_token)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["processor_class"] = self.stock_name
        output.setdefault("video_processor", dict(self.video_processor))
        return output


def minimal_video_processor(kind: str, patch_size: int) -> dict[str, Any]:
    """What a stock video processor of this family needs to load on a machine with torchvision."""
    return {
        "video_processor_type": kind,
        "patch_size": patch_size,
        "temporal_patch_size": 2,
        "merge_size": 2,
    }
