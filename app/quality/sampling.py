"""Sample many continuations per prompt while paying each prompt's prefill once."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import (
    LogitsProcessorList,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from app.quality.kv_cache import cache_kwargs, output_cache

# Vision placeholders must never be generated: a completion holding <|image_pad|> breaks the
# next prompt built from it (TRL <= 1.14 crashed on exactly this).
VISION_TOKENS = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


@dataclass
class SamplingParams:
    """Explicit sampling settings; Qwen's shipped generation config (top_k=1) is never used."""

    max_new_tokens: int = 8
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0  # 1.0 disables nucleus filtering
    top_k: int = 0  # 0 disables top-k filtering
    eos_token_ids: list[int] = field(default_factory=list)
    suppress_token_ids: list[int] = field(default_factory=list)


def _processors(params: SamplingParams, device: torch.device) -> LogitsProcessorList:
    procs = LogitsProcessorList()
    if params.suppress_token_ids:
        procs.append(SuppressTokensLogitsProcessor(params.suppress_token_ids, device=device))
    if params.temperature > 0:
        procs.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k > 0:
            procs.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            procs.append(TopPLogitsWarper(params.top_p))
    return procs


def _next_tokens(
    logits: torch.Tensor, procs: LogitsProcessorList, params: SamplingParams, generator
) -> torch.Tensor:
    scores = procs(None, logits.float())
    if params.temperature <= 0:
        return scores.argmax(-1)
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def supports_shared_prefill(model) -> bool:
    """Whether the model exposes Qwen-VL's 3D rope index, which the decode loop needs."""
    return hasattr(getattr(model, "model", None), "get_rope_index")


@torch.inference_mode()
def sample_continuations(
    model,
    inputs: dict[str, torch.Tensor],
    counts: list[int],
    params: SamplingParams,
    generator: torch.Generator | None = None,
) -> list[list[list[int]]]:
    """Token ids of counts[i] sampled continuations of row i of a left-padded batch.

    Each row is prefilled once; its KV cache is then replicated counts[i] times, so K votes
    cost one prefill plus K short decodes instead of K prefills.
    """
    if not supports_shared_prefill(model):
        return _sample_with_generate(model, inputs, counts, params, generator)
    generated = sample_token_matrix(model, inputs, counts, params, generator).tolist()
    return _split(_cut_at_eos(generated, set(params.eos_token_ids)), counts)


@torch.inference_mode()
def sample_token_matrix(
    model,
    inputs: dict[str, torch.Tensor],
    counts: list[int],
    params: SamplingParams,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The sampled tokens, one row per continuation (row i of the batch counts[i] times, in
    order), until every row has met an EOS or max_new_tokens; tokens after a row's first EOS
    are whatever was sampled there. Needs `supports_shared_prefill(model)`."""
    device = inputs["input_ids"].device
    mask = inputs["attention_mask"]
    positions, deltas = model.model.get_rope_index(
        inputs["input_ids"],
        image_grid_thw=inputs.get("image_grid_thw"),
        attention_mask=mask,
        mm_token_type_ids=inputs.get("mm_token_type_ids"),
    )
    decoding = params.max_new_tokens > 1
    out = model(**inputs, position_ids=positions, use_cache=decoding, logits_to_keep=1)
    index = torch.repeat_interleave(
        torch.arange(len(counts), device=device), torch.tensor(counts, device=device)
    )
    cache = output_cache(out)
    if decoding:  # one answer token needs no cache: sample it straight from the prefill logits
        cache.reorder_cache(index)
    logits = out.logits[index, -1, :]
    mask, deltas = mask[index], deltas.to(device)[index]
    procs = _processors(params, device)
    eos = torch.tensor(params.eos_token_ids or [-1], device=device)
    done = torch.zeros(len(index), dtype=torch.bool, device=device)
    steps = []
    for step in range(params.max_new_tokens):
        tokens = _next_tokens(logits, procs, params, generator)
        steps.append(tokens)
        done |= torch.isin(tokens, eos)
        if done.all() or step == params.max_new_tokens - 1:
            break
        # The next text position continues from the row's last real token (left padding).
        pos = (mask.sum(-1, keepdim=True) + deltas).view(1, -1, 1).expand(3, -1, 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out = model(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=pos,
            **cache_kwargs(model, cache),
            use_cache=True,
            logits_to_keep=1,
        )
        cache, logits = output_cache(out), out.logits[:, -1, :]
    return torch.stack(steps, dim=1)


def _sample_with_generate(model, inputs, counts, params, generator) -> list[list[list[int]]]:
    """Fallback for other architectures: HF generate, which pays one prefill per sample."""
    if generator is not None:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    per_row = max(counts)
    ids = model.generate(
        **inputs,
        do_sample=params.temperature > 0,
        temperature=params.temperature if params.temperature > 0 else None,
        top_p=params.top_p,
        top_k=params.top_k,
        repetition_penalty=1.0,
        max_new_tokens=params.max_new_tokens,
        num_return_sequences=per_row,
        suppress_tokens=params.suppress_token_ids or None,
        eos_token_id=params.eos_token_ids or None,
    )
    new = _cut_at_eos(ids[:, inputs["input_ids"].shape[1] :].tolist(), set(params.eos_token_ids))
    return [new[i * per_row : i * per_row + c] for i, c in enumerate(counts)]


def _cut_at_eos(sequences: list[list[int]], eos: set[int]) -> list[list[int]]:
    cut = []
    for seq in sequences:
        end = next((i for i, t in enumerate(seq) if t in eos), len(seq))
        cut.append(seq[:end])
    return cut


def _split(sequences: list[list[int]], counts: list[int]) -> list[list[list[int]]]:
    out, start = [], 0
    for count in counts:
        out.append(sequences[start : start + count])
        start += count
    return out
