"""What a model family is: the pieces that differ between Qwen-VL generations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from transformers import PretrainedConfig, ProcessorMixin


class TinySizes(Protocol):
    """The sizes a tiny fixture is built with (app.demo.tiny.TinySpec has them all)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vision_depth: int
    vision_hidden_size: int
    vision_intermediate_size: int
    vision_num_heads: int
    initializer_range: float
    tie_word_embeddings: bool


# tokenizer.convert_tokens_to_ids: the config builders need the special tokens' ids.
TokenIds = Callable[[str], int]


@dataclass(frozen=True)
class Family:
    """One model family: its config.json model_type, processor and the tiny fixture's recipe."""

    name: str  # the CLI's spelling: qwen2.5-vl
    model_type: str  # config.json's model_type: qwen2_5_vl
    patch_size: int  # vision patch side (the resize factor is patch_size * merge_size)
    model_class: type  # the ...ForConditionalGeneration class the tiny fixture instantiates
    processor_class: type[ProcessorMixin]  # image-only subclass (no torchvision needed)
    chat_template: str
    # (sizes, token ids, vocab size) -> config of a random-weight tiny model of this family
    tiny_config: Callable[[TinySizes, TokenIds, int], PretrainedConfig]
    # preprocessor_config.json of the real checkpoint, pixel bounds applied: (min, max) -> dict
    checkpoint_preprocessor: Callable[[int, int], dict[str, Any]]
    # special tokens past Qwen2.5-VL's (Qwen3 adds <think> and tool responses)
    extra_tokens: tuple[str, ...] = field(default_factory=tuple)


def mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary pairs over (t, h, w) like Qwen's [16, 24, 24] for head_dim 128."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def text_config(sizes: TinySizes, ids: TokenIds, vocab_size: int, **extra: Any) -> dict:
    """The text model's settings shared by every family; `extra` adds or overrides keys."""
    head_dim = sizes.hidden_size // sizes.num_attention_heads
    text = {
        "vocab_size": vocab_size,
        "hidden_size": sizes.hidden_size,
        "intermediate_size": sizes.intermediate_size,
        "num_hidden_layers": sizes.num_hidden_layers,
        "num_attention_heads": sizes.num_attention_heads,
        "num_key_value_heads": sizes.num_key_value_heads,
        "max_position_embeddings": 32768,
        "max_window_layers": sizes.num_hidden_layers,
        "initializer_range": sizes.initializer_range,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": mrope_section(head_dim),
        },
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": ids("<|im_end|>"),
        "pad_token_id": ids("<|endoftext|>"),
        "tie_word_embeddings": sizes.tie_word_embeddings,
    }
    text.update(extra)
    return text


def vision_token_ids(ids: TokenIds) -> dict[str, int]:
    """The top-level config's vision placeholder ids (same tokens in every Qwen-VL)."""
    return {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
    }
