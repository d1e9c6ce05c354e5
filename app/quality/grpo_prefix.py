"""TRL's GRPO trainer without recomputing each prompt G times (shared prefills).

TRL repeats every prompt `num_generations` times; for a vision-language model each copy runs the
vision tower and the whole prompt again, in sampling, in the reference model's log-probabilities
and in the policy's forward and backward. Here each distinct prompt is prefilled once and its KV
cache replicated for its G completions; gradients flow through the shared prefill, so the loss
and its gradient are TRL's up to float rounding. Log-probabilities come from the backbone's
hidden states through TRL's chunked kernel, so no (rows, length, vocabulary) logits exist, and
a generation batch is processed one micro-batch at a time, as TRL does. Where the shortcut does
not apply (several processes, another architecture, options it does not cover, checkpointed
layers, which keep no KV cache) TRL's own path runs. The log-probabilities are computed in
app/quality/prefix_logps.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from trl import GRPOTrainer

from app.quality.prefix_logps import (
    chunked_logps,
    distinct_prompts,
    shared_prefix_logps,
)
from app.quality.sampling import SamplingParams, sample_token_matrix, supports_shared_prefill

__all__ = ["SharedPrefixGRPOTrainer", "chunked_logps", "shared_prefix_logps"]


class SharedPrefixGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose sampling and log-probabilities prefill each distinct prompt once."""

    def _shared(self, model: Any) -> bool:
        return (
            self.accelerator.num_processes == 1
            and not self.use_vllm
            and not getattr(self, "use_transformers_continuous_batching", False)
            and supports_shared_prefill(model)
        )

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        pixel_values=None,
        image_grid_thw=None,
        num_images=None,
        mm_token_type_ids=None,
        **others,
    ):
        uncovered = compute_aux_loss or any(v is not None for v in others.values())
        rows = input_ids.size(0)
        one_image_each = image_grid_thw is not None and image_grid_thw.size(0) == rows
        if uncovered or not one_image_each or not self._shared(model):
            return super()._get_per_token_logps_and_entropies(
                model,
                input_ids,
                attention_mask,
                logits_to_keep,
                batch_size=batch_size,
                compute_entropy=compute_entropy,
                compute_aux_loss=compute_aux_loss,
                pixel_values=pixel_values,
                image_grid_thw=image_grid_thw,
                num_images=num_images,
                mm_token_type_ids=mm_token_type_ids,
                **others,
            )
        # TRL passes a whole generation batch with batch_size = the micro-batch: keep its bound.
        step = batch_size or rows
        ends = torch.cat([image_grid_thw.new_zeros(1), image_grid_thw.prod(-1).cumsum(0)])
        logps, entropies = [], []
        for start in range(0, rows, step):
            end = min(start + step, rows)
            chunk = {
                "pixel_values": pixel_values[int(ends[start]) : int(ends[end])],
                "image_grid_thw": image_grid_thw[start:end],
                "mm_token_type_ids": None
                if mm_token_type_ids is None
                else mm_token_type_ids[start:end],
            }
            with self.accelerator.autocast():
                shared = shared_prefix_logps(
                    model,
                    input_ids[start:end],
                    attention_mask[start:end],
                    logits_to_keep,
                    temperature=self.temperature,
                    compute_entropy=compute_entropy,
                    **chunk,
                )
            if shared is None:  # no repeated prompt in this chunk, or checkpointed layers
                shared = super()._get_per_token_logps_and_entropies(
                    model,
                    input_ids[start:end],
                    attention_mask[start:end],
                    logits_to_keep,
                    compute_entropy=compute_entropy,
                    num_images=[1] * (end - start),
                    **chunk,
                )[:2]
            logps.append(shared[0])
            entropies.append(shared[1])
        entropy = torch.cat(entropies) if compute_entropy else None
        return torch.cat(logps), entropy, None

    def _tokenize_prompts(self, prompts: list):
        """TRL's tokenization of each distinct prompt once, repeated for its copies (TRL hands
        over every prompt num_generations times, and a VLM processor re-reads its image)."""
        group = self.num_generations
        keys = [_prompt_key(p) for p in prompts]
        runs = len(prompts) % group == 0 and all(
            keys[i] == keys[i - i % group] for i in range(len(prompts))
        )
        if not runs or None in keys:
            return super()._tokenize_prompts(prompts)
        prompt_ids, images, fields = super()._tokenize_prompts(prompts[::group])
        repeated = _repeat_fields(fields, group)
        if repeated is None:
            return super()._tokenize_prompts(prompts)
        prompt_ids = [ids for ids in prompt_ids for _ in range(group)]
        images = None if images is None else [im for im in images for _ in range(group)]
        return prompt_ids, images, repeated

    def _generate_single_turn(
        self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False
    ):
        model = self.accelerator.unwrap_model(self.model)
        config = self.generation_config
        plain = (
            (config.repetition_penalty or 1.0) == 1.0
            and config.min_p is None
            and not getattr(self, "tools", None)
        )
        if not (plain and self._shared(model)):
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        original = model.generate

        def generate(**inputs: Any) -> torch.Tensor:
            inputs.pop("generation_config", None)
            inputs.pop("disable_compile", None)
            shared = _shared_generate(model, inputs, num_generations, config)
            return original(**inputs, generation_config=config) if shared is None else shared

        model.generate = (
            generate  # TRL's own loop calls it; the instance attribute is removed below
        )
        try:
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        finally:
            del model.generate


def _shared_generate(
    model: Any, inputs: dict[str, torch.Tensor], group: int, config: Any
) -> torch.Tensor | None:
    """What `model.generate` returns (prompt then completion ids, padded after EOS), sampling
    each run of `group` identical prompts (TRL's layout) from one prefill; None otherwise."""
    input_ids = inputs["input_ids"]
    distinct = distinct_prompts(
        input_ids,
        inputs["attention_mask"],
        input_ids.size(1),
        inputs.get("pixel_values"),
        inputs.get("image_grid_thw"),
        inputs.get("mm_token_type_ids"),
    )
    if distinct is None:
        return None
    prompts, index = distinct
    runs = index.view(-1, group) if index.numel() % group == 0 else None
    if runs is None or not bool((runs == runs[:, :1]).all()):
        return None
    # One prefill per run (two runs with the same image are sampled separately, as TRL does).
    order = runs[:, 0]
    prompts = {k: v[order] if k != "pixel_values" else v for k, v in prompts.items()}
    patches = prompts["pixel_values"].size(0) // int(index.max() + 1)
    pixels = prompts["pixel_values"].view(-1, patches, prompts["pixel_values"].size(-1))
    prompts["pixel_values"] = pixels[order].reshape(-1, pixels.size(-1))
    eos = config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    params = SamplingParams(
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature if config.do_sample else 0.0,
        top_p=config.top_p if config.top_p is not None else 1.0,
        top_k=config.top_k or 0,
        eos_token_ids=eos,
        suppress_token_ids=list(config.suppress_tokens or []),
    )
    counts = [group] * prompts["input_ids"].size(0)
    tokens = sample_token_matrix(model, prompts, counts, params)
    if eos:
        hit = torch.isin(tokens, torch.tensor(eos, device=tokens.device))
        after = (hit.cumsum(1) - hit.int()) > 0  # strictly after the first EOS
        tokens = tokens.masked_fill(after, config.pad_token_id)
    return torch.cat([input_ids, tokens], dim=1)


def _prompt_key(prompt: Any) -> tuple | None:
    """What makes two conversational prompts the same: their text and their image objects."""
    if not isinstance(prompt, list):
        return None
    parts: list = []
    for message in prompt:
        content = message.get("content")
        if isinstance(content, str):
            parts.append((message.get("role"), content))
            continue
        for block in content or []:
            image = block.get("image")
            parts.append((message.get("role"), block.get("type"), block.get("text"), id(image)))
    return tuple(parts)


def _repeat_fields(fields: dict[str, Any], group: int) -> dict[str, Any] | None:
    """Multimodal processor outputs of distinct prompts, each repeated `group` times; None for a
    field this does not know how to repeat."""
    grid = fields.get("image_grid_thw")
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "pixel_values" and grid is not None and hasattr(value, "shape"):
            ends = np.cumsum(np.prod(np.asarray(grid), axis=-1))[:-1]
            blocks = np.split(np.asarray(value), ends)
            merged = np.concatenate([b for b in blocks for _ in range(group)])
            out[key] = torch.as_tensor(merged) if isinstance(value, torch.Tensor) else merged
        elif key == "image_grid_thw" and hasattr(value, "shape"):
            merged = np.repeat(np.asarray(value), group, axis=0)
            out[key] = torch.as_tensor(merged) if isinstance(value, torch.Tensor) else merged
        elif isinstance(value, list):
            out[key] = [row for row in value for _ in range(group)]
        else:
            return None
    return out
