"""Qwen3-VL: patch 16 (resize factor 32), learned vision position embeddings, deepstack
features, interleaved M-RoPE, no default system prompt, Qwen3's <think> tokens."""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig, Qwen3VLConfig, Qwen3VLForConditionalGeneration
from transformers.models.qwen3_vl import Qwen3VLProcessor

from app.quality.families.base import (
    Family,
    TinySizes,
    TokenIds,
    mrope_section,
    text_config,
    vision_token_ids,
)
from app.quality.families.image_only import ImageOnlyProcessor, minimal_video_processor

PATCH_SIZE = 16

# Qwen3-VL-Instruct's chat template without its tool-calling and <think>-splitting branches:
# a system turn only when given, one vision block per image, "<|im_start|>assistant\n".
CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) %}{%- set video_count = namespace(value=0) %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for content in message['content'] %}"
    "{%- if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{%- set image_count.value = image_count.value + 1 %}"
    "{%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif content['type'] == 'video' or 'video' in content %}"
    "{%- set video_count.value = video_count.value + 1 %}"
    "{%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in content %}{{- content['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Qwen3-VL-2B-Instruct's preprocessor_config.json (pixel bounds as a size dict).
QWEN3_PREPROCESSOR = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": PATCH_SIZE,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "image_processor_type": "Qwen2VLImageProcessorFast",
    "processor_class": "Qwen3VLProcessor",
}


class ImageOnlyQwen3VLProcessor(ImageOnlyProcessor, Qwen3VLProcessor):
    """Qwen3VLProcessor with only image processor and tokenizer (see ImageOnlyProcessor)."""

    stock_name = "Qwen3VLProcessor"
    video_processor = minimal_video_processor("Qwen3VLVideoProcessor", PATCH_SIZE)


def tiny_config(sizes: TinySizes, ids: TokenIds, vocab_size: int) -> PretrainedConfig:
    """A random-weight Qwen3-VL of these sizes (deepstack from the first vision block)."""
    head_dim = sizes.hidden_size // sizes.num_attention_heads
    rope = {
        "rope_type": "default",
        "rope_theta": 5000000.0,
        "mrope_section": mrope_section(head_dim),
        "mrope_interleaved": True,
    }
    text = text_config(sizes, ids, vocab_size, head_dim=head_dim, rope_parameters=rope)
    vision = {
        "depth": sizes.vision_depth,
        "hidden_size": sizes.vision_hidden_size,
        "intermediate_size": sizes.vision_intermediate_size,
        "num_heads": sizes.vision_num_heads,
        "out_hidden_size": sizes.hidden_size,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "num_position_embeddings": 64,  # a square: the learned grid is interpolated per image
        "deepstack_visual_indexes": [0],  # within the tiny depth, so the path runs
        "initializer_range": sizes.initializer_range,
    }
    return Qwen3VLConfig(
        text_config=text,
        vision_config=vision,
        **vision_token_ids(ids),
        tie_word_embeddings=sizes.tie_word_embeddings,
    )


def checkpoint_preprocessor(min_pixels: int, max_pixels: int) -> dict[str, Any]:
    """The 2B checkpoint's preprocessor_config.json with these pixel bounds."""
    size = {"longest_edge": max_pixels, "shortest_edge": min_pixels}
    return {**QWEN3_PREPROCESSOR, "size": size}


FAMILY = Family(
    name="qwen3-vl",
    model_type="qwen3_vl",
    patch_size=PATCH_SIZE,
    model_class=Qwen3VLForConditionalGeneration,
    processor_class=ImageOnlyQwen3VLProcessor,
    chat_template=CHAT_TEMPLATE,
    tiny_config=tiny_config,
    checkpoint_preprocessor=checkpoint_preprocessor,
    extra_tokens=("<tool_response>", "</tool_response>", "<think>", "</think>"),
)
