"""How large a vLLM engine must be: its context length and its share of a GPU (pure functions)."""

from __future__ import annotations

import math


def image_tokens(max_pixels: int, patch_size: int = 14, merge_size: int = 2) -> int:
    """The most tokens one image takes at a pixel bound (Qwen-VL: one per merged patch)."""
    if max_pixels <= 0 or patch_size <= 0 or merge_size <= 0:
        raise ValueError("max_pixels, patch_size and merge_size must be positive")
    return max(1, max_pixels // (patch_size * merge_size) ** 2)


def max_model_len(
    prompt_tokens: int, images: int, tokens_per_image: int, completion_tokens: int
) -> int:
    """Context length for a prompt of `prompt_tokens` text tokens (one pad per image counted)
    with `images` images at `tokens_per_image` and the longest completion asked for; rounded
    up to a multiple of 16."""
    if min(prompt_tokens, images, completion_tokens) < 0 or tokens_per_image < 1:
        raise ValueError("token counts must not be negative")
    needed = prompt_tokens + images * (tokens_per_image - 1) + completion_tokens
    return 16 * math.ceil(needed / 16)


def engine_share(budget: float, engines: int) -> float:
    """vLLM's gpu_memory_utilization for each of `engines` engines alive together within
    `budget` (a fraction of the device): the shares never add up past the budget."""
    if not 0 < budget <= 1:
        raise ValueError(f"the GPU memory budget must be in (0, 1], not {budget}")
    if engines < 1:
        raise ValueError("at least one engine")
    return budget / engines
