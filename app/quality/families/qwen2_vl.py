"""Qwen2-VL: patch 14, full vision attention (embed_dim, mlp_ratio), Qwen2.5-VL's template."""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration
from transformers.models.qwen2_vl import Qwen2VLProcessor

from app.quality.families.base import Family, TinySizes, TokenIds, text_config, vision_token_ids
from app.quality.families.image_only import ImageOnlyProcessor, minimal_video_processor
from app.quality.families.qwen2_5_vl import CHAT_TEMPLATE
from app.quality.families.qwen2_5_vl import checkpoint_preprocessor as qwen2_5_preprocessor

PATCH_SIZE = 14


class ImageOnlyQwen2VLProcessor(ImageOnlyProcessor, Qwen2VLProcessor):
    """Qwen2VLProcessor with only image processor and tokenizer (see ImageOnlyProcessor)."""

    stock_name = "Qwen2VLProcessor"
    video_processor = minimal_video_processor("Qwen2VLVideoProcessor", PATCH_SIZE)


def tiny_config(sizes: TinySizes, ids: TokenIds, vocab_size: int) -> PretrainedConfig:
    """A random-weight Qwen2-VL of these sizes (its vision MLP ratio must be an integer)."""
    vision = {
        "depth": sizes.vision_depth,
        "embed_dim": sizes.vision_hidden_size,
        "hidden_size": sizes.hidden_size,  # the merger's output: the text hidden size
        "mlp_ratio": sizes.vision_intermediate_size // sizes.vision_hidden_size,
        "num_heads": sizes.vision_num_heads,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "initializer_range": sizes.initializer_range,
    }
    return Qwen2VLConfig(
        text_config=text_config(sizes, ids, vocab_size),
        vision_config=vision,
        **vision_token_ids(ids),
        tie_word_embeddings=sizes.tie_word_embeddings,
    )


def checkpoint_preprocessor(min_pixels: int, max_pixels: int) -> dict[str, Any]:
    """Qwen2-VL-7B-Instruct's preprocessor_config.json (Qwen2.5-VL's but its processor class)."""
    own = qwen2_5_preprocessor(min_pixels, max_pixels)
    return {**own, "processor_class": "Qwen2VLProcessor"}


FAMILY = Family(
    name="qwen2-vl",
    model_type="qwen2_vl",
    patch_size=PATCH_SIZE,
    model_class=Qwen2VLForConditionalGeneration,
    processor_class=ImageOnlyQwen2VLProcessor,
    chat_template=CHAT_TEMPLATE,
    tiny_config=tiny_config,
    checkpoint_preprocessor=checkpoint_preprocessor,
)
