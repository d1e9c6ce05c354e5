"""Qwen2.5-VL: patch 14, windowed vision attention, the default system prompt in the template."""

from __future__ import annotations

from typing import Any

from transformers import (
    PretrainedConfig,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
)
from transformers.models.qwen2_5_vl import Qwen2_5_VLProcessor

from app.quality.families.base import Family, TinySizes, TokenIds, text_config, vision_token_ids
from app.quality.families.image_only import ImageOnlyProcessor, minimal_video_processor

PATCH_SIZE = 14

# The Qwen2.5-VL chat template (no package ships it): default system prompt, one vision block
# per image, generation prompt "<|im_start|>assistant\n". Qwen2-VL ships the same one.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2.5-VL-7B-Instruct's preprocessor_config.json, as the checkpoint ships it.
QWEN_7B_PREPROCESSOR = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": PATCH_SIZE,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}


class ImageOnlyQwen2_5_VLProcessor(ImageOnlyProcessor, Qwen2_5_VLProcessor):
    """Qwen2_5_VLProcessor with only image processor and tokenizer (see ImageOnlyProcessor)."""

    stock_name = "Qwen2_5_VLProcessor"
    video_processor = minimal_video_processor("Qwen2VLVideoProcessor", PATCH_SIZE)


def tiny_config(sizes: TinySizes, ids: TokenIds, vocab_size: int) -> PretrainedConfig:
    """A random-weight Qwen2.5-VL of these sizes (window attention, last block full)."""
    vision = {
        "depth": sizes.vision_depth,
        "hidden_size": sizes.vision_hidden_size,
        "intermediate_size": sizes.vision_intermediate_size,
        "num_heads": sizes.vision_num_heads,
        "out_hidden_size": sizes.hidden_size,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [sizes.vision_depth - 1],
        "initializer_range": sizes.initializer_range,
    }
    return Qwen2_5_VLConfig(
        text_config=text_config(sizes, ids, vocab_size),
        vision_config=vision,
        **vision_token_ids(ids),
        tie_word_embeddings=sizes.tie_word_embeddings,
    )


def checkpoint_preprocessor(min_pixels: int, max_pixels: int) -> dict[str, Any]:
    """The 7B checkpoint's preprocessor_config.json with these pixel bounds."""
    return {**QWEN_7B_PREPROCESSOR, "min_pixels": min_pixels, "max_pixels": max_pixels}


FAMILY = Family(
    name="qwen2.5-vl",
    model_type="qwen2_5_vl",
    patch_size=PATCH_SIZE,
    model_class=Qwen2_5_VLForConditionalGeneration,
    processor_class=ImageOnlyQwen2_5_VLProcessor,
    chat_template=CHAT_TEMPLATE,
    tiny_config=tiny_config,
    checkpoint_preprocessor=checkpoint_preprocessor,
)
