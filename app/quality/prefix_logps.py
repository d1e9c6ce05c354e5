"""Log-probabilities of GRPO completions with each distinct prompt prefilled once, projected
through the output head in chunks (TRL's kernel), so no (rows, length, vocabulary) logits exist.
The shared-prefix trainer (app/quality/grpo_prefix.py) calls `shared_prefix_logps`."""

from __future__ import annotations

from typing import Any

import torch
from trl.kernels import ChunkedLogProbFunction
from trl.trainer.utils import maybe_gather_lm_head_ctx

from app.quality.kv_cache import cache_kwargs, output_cache
from app.quality.sampling import supports_shared_prefill

__all__ = ["VOCAB_CHUNK", "chunked_logps", "distinct_prompts", "shared_prefix_logps"]

# Vocabulary columns per projected tile: TRL's own (its kernel also caps a tile at 4096 positions),
# so one tile of fp32 logits is at most 512 MiB whatever the batch.
VOCAB_CHUNK = 32768


def distinct_prompts(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_width: int,
    pixel_values: torch.Tensor | None,
    image_grid_thw: torch.Tensor | None,
    mm_token_type_ids: torch.Tensor | None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor] | None:
    """The distinct prompts among rows with one image each, as model inputs, and each row's
    index among them; None when rows do not share prompts or images differ in size."""
    n = input_ids.size(0)
    if pixel_values is None or image_grid_thw is None or image_grid_thw.size(0) != n:
        return None
    patches = image_grid_thw.prod(-1)
    if not bool((patches == patches[0]).all()):
        return None
    prompt_ids, prompt_mask = input_ids[:, :prompt_width], attention_mask[:, :prompt_width]
    pixels = pixel_values.reshape(n, int(patches[0]), -1)
    parts = [prompt_ids, prompt_mask, image_grid_thw]
    if mm_token_type_ids is not None:
        parts.append(mm_token_type_ids[:, :prompt_width])
    seen: dict[bytes, int] = {}
    inverse, first = [], []
    for row in range(n):
        key = b"".join(t[row].detach().cpu().numpy().tobytes() for t in (*parts, pixels))
        if key not in seen:
            seen[key] = len(first)
            first.append(row)
        inverse.append(seen[key])
    if len(first) == n:
        return None
    keep = torch.tensor(first, device=input_ids.device)
    inputs = {
        "input_ids": prompt_ids[keep],
        "attention_mask": prompt_mask[keep],
        "pixel_values": pixels[keep].reshape(-1, pixel_values.size(-1)),
        "image_grid_thw": image_grid_thw[keep],
    }
    if mm_token_type_ids is not None:
        inputs["mm_token_type_ids"] = mm_token_type_ids[keep, :prompt_width]
    return inputs, torch.tensor(inverse, device=input_ids.device)


def _checkpointing(model: Any) -> bool:
    """Whether this forward checkpoints its layers, which then drop any KV cache."""
    if not (model.training and torch.is_grad_enabled()):
        return False
    return any(getattr(m, "gradient_checkpointing", False) for m in model.modules())


def chunked_logps(
    hidden: torch.Tensor,
    head: torch.nn.Module,
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    compute_entropy: bool = False,
    vocab_chunk: int = VOCAB_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities of `targets` (and entropies) under `head(hidden) / temperature` where
    `mask` is set, 0 elsewhere, without a (rows, length, vocab) tensor: TRL's kernel projects
    at most 4096 positions x `vocab_chunk` logits at a time and recomputes them in backward."""
    weight, bias = head.weight, getattr(head, "bias", None)
    with maybe_gather_lm_head_ctx(weight, bias):  # ZeRO-3 keeps the head sharded
        logps, entropy, *_ = ChunkedLogProbFunction.apply(
            hidden[mask],
            weight,
            bias,
            targets[mask],
            temperature,
            vocab_chunk,
            None,
            1.0,
            ("entropy",) if compute_entropy else (),
        )
    # masked_scatter keeps the result connected to the model even with no position scored.
    per_token = logps.new_zeros(mask.shape).masked_scatter(mask, logps)
    if entropy is not None:
        entropy = entropy.new_zeros(mask.shape).masked_scatter(mask, entropy)
    return per_token, entropy


def shared_prefix_logps(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    *,
    pixel_values: torch.Tensor | None,
    image_grid_thw: torch.Tensor | None,
    mm_token_type_ids: torch.Tensor | None = None,
    temperature: float = 1.0,
    compute_entropy: bool = False,
    vocab_chunk: int = VOCAB_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Log-probabilities (and entropies) of the last `logits_to_keep` tokens of each row at
    `temperature`, as TRL computes them (0 at padding), each distinct prompt prefilled once and
    the logits projected in chunks; None when no prompt repeats, rows do not hold one image
    each, the model lacks Qwen-VL's rope index, or its layers are checkpointed (no KV cache)."""
    if not supports_shared_prefill(model) or _checkpointing(model):
        return None
    prompt_width = input_ids.size(1) - logits_to_keep
    distinct = distinct_prompts(
        input_ids, attention_mask, prompt_width, pixel_values, image_grid_thw, mm_token_type_ids
    )
    if distinct is None:
        return None
    prompts, index = distinct
    device = input_ids.device
    positions, deltas = model.model.get_rope_index(
        prompts["input_ids"],
        image_grid_thw=prompts["image_grid_thw"],
        attention_mask=prompts["attention_mask"],
        mm_token_type_ids=prompts.get("mm_token_type_ids"),
    )
    completion = input_ids[:, prompt_width:]
    # The backbone only: hidden states, never the logits of every position.
    out = model.model(**prompts, position_ids=positions, use_cache=logits_to_keep > 1)
    hidden = out.last_hidden_state[index, -1:, :]
    if logits_to_keep > 1:
        cache = output_cache(out)
        cache.reorder_cache(index)  # index_select: differentiable, gradients reach the prefill
        mask = torch.cat([prompts["attention_mask"][index], attention_mask[:, prompt_width:-1]], 1)
        # Completion tokens continue the text positions after the prompt's last real token.
        start = prompts["attention_mask"].sum(-1)[index] + deltas.to(device).view(-1)[index]
        steps = torch.arange(logits_to_keep - 1, device=device)
        pos = (start[:, None] + steps[None, :]).unsqueeze(0).expand(3, -1, -1)
        rest = model.model(
            input_ids=completion[:, :-1],
            attention_mask=mask,
            position_ids=pos,
            **cache_kwargs(model.model, cache),
            use_cache=True,
        )
        hidden = torch.cat([hidden, rest.last_hidden_state], dim=1)
    return chunked_logps(
        hidden,
        model.get_output_embeddings(),
        completion,
        attention_mask[:, prompt_width:].bool(),
        temperature=temperature,
        compute_entropy=compute_entropy,
        vocab_chunk=vocab_chunk,
    )
