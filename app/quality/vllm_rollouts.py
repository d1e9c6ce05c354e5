"""GRPO rollouts through vLLM: TRL's colocate mode with the three faults of TRL 1.16 + vLLM 0.32
this project owns (measured in docs/TOOLCHAIN.md), fixed on a built trainer by `install`.

1. Weight sync: TRL loads each parameter with `model.load_weights`, which vLLM-CPU cannot do
   once its linear layers are packed (`'Parameter' object has no attribute 'weight_loader'`).
   We reload through `model_runner.reload_weights` and re-process each `ParallelLMHead`: a tied
   head keeps the initial weights otherwise, silently.
2. Image prompts: TRL sends ids with each `<|image_pad|>` run already expanded and vLLM expands
   it again (huggingface/trl#6294). We send one pad per run and check vLLM's prompt equals TRL's.
   After a reload the multimodal caches are cleared on both sides, or an image seen before
   the sync fails with `Encoder cache miss`.
3. vLLM may sample vision tokens into a completion (then `Image features and image tokens do
   not match`): `logit_bias` -100 on them.
Also: TRL passes no dtype, so vLLM would run an fp32 checkpoint in bf16; `explicit_dtype` fixes it.

Imports only torch, trl and vllm (when used): it runs in .venv-vllm, beside vLLM.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import time
from collections.abc import Iterator, Sequence
from typing import Any

# The versions these fixes were written against and tested with (tests/quality/test_vllm_rollouts).
TESTED = {"trl": "1.16.0", "vllm": "0.32.0"}
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                 "<|video_pad|>")  # fmt: skip


def vllm_version() -> str | None:
    """The installed vLLM's version (the CPU build is the `vllm-cpu` distribution), or None."""
    for dist in ("vllm", "vllm-cpu"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(dist)
    return None


def vllm_available() -> bool:
    """Whether vLLM is installed here (GRPO falls back to hf rollouts when not)."""
    return vllm_version() is not None


def check_versions(found: dict[str, str | None] | None = None) -> None:
    """Raise unless trl and vLLM are the versions the fixes were tested with."""
    if found is None:
        found = {"trl": importlib.metadata.version("trl"), "vllm": vllm_version()}
    wrong = {name: found.get(name) for name, want in TESTED.items() if found.get(name) != want}
    if wrong:
        raise RuntimeError(
            f"GRPO rollouts through vLLM were tested with {TESTED}, found {wrong}: the weight "
            "sync and prompt fixes in app/quality/vllm_rollouts.py reach into both; re-test them "
            "(tests/quality/test_vllm_rollouts.py) before changing the pins"
        )


def collapse_image_pads(ids: Sequence[int], pad_id: int) -> list[int]:
    """`ids` with each run of `pad_id` cut to one token (vLLM expands it per image itself)."""
    out: list[int] = []
    for token in ids:
        if not (token == pad_id and out and out[-1] == pad_id):
            out.append(int(token))
    return out


def vision_token_ids(tokenizer: Any) -> list[int]:
    """Ids of the vision tokens this tokenizer knows (never valid in a completion)."""
    unknown = getattr(tokenizer, "unk_token_id", None)
    ids = []
    for token in VISION_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != unknown:
            ids.append(token_id)
    return sorted(set(ids))


def vision_logit_bias(tokenizer: Any) -> dict[int, float]:
    """vLLM `logit_bias` that keeps vision tokens out of sampled completions."""
    return {token_id: -100.0 for token_id in vision_token_ids(tokenizer)}


@contextlib.contextmanager
def explicit_dtype(dtype: str, eager: bool = False) -> Iterator[None]:
    """While a trainer is built, TRL's colocated `LLM(...)` gets `dtype` (TRL passes none) and,
    with `eager`, no compilation (as every engine on CPU: app/quality/vllm_engine.py)."""
    from trl.generation import vllm_generation

    original = vllm_generation.LLM
    vllm_generation.LLM = functools.partial(original, dtype=dtype, enforce_eager=eager)
    try:
        yield
    finally:
        vllm_generation.LLM = original


def reprocess_lm_heads(model: Any) -> int:
    """Rebuild each `ParallelLMHead`'s packed weight from its (reloaded) parameter; the count."""
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead

    heads = 0
    for module in model.modules():
        method = getattr(module, "quant_method", None)
        if isinstance(module, ParallelLMHead) and method is not None:
            method.process_weights_after_loading(module)
            heads += 1
    return heads


def sync_weights(generation: Any) -> None:
    """Push the training model's weights into the colocated engine (TRL's sync_weights, fixed)."""
    runner = generation.llm.llm_engine.model_executor.driver_worker.model_runner
    runner.reload_weights(
        weights_iterator=generation._iter_named_params(), is_checkpoint_format=True
    )
    reprocess_lm_heads(runner.get_model())
    generation.llm.reset_prefix_cache()
    # reload_weights clears the runner's encoder cache but not the scheduler's record of it nor
    # the front end's: an image seen before the sync would then miss (`Encoder cache miss`).
    generation.llm.llm_engine.reset_encoder_cache()
    generation.llm.reset_mm_cache()


class RolloutLog:
    """What `install` saw in each generation call: the ids TRL meant, vLLM's, and the sampling
    parameters vLLM got (tests and benchmarks read it)."""

    def __init__(self) -> None:
        self.prompts_equal: list[bool] = []
        self.completions: list[list[int]] = []
        self.logit_bias: list[dict[int, float] | None] = []
        self.sync_seconds: list[float] = []


def install(trainer: Any, strict: bool = True) -> RolloutLog:
    """Fix a GRPOTrainer built with `use_vllm=True, vllm_mode="colocate"` (see the module's
    docstring). `strict`: raise when vLLM's prompt ids differ from TRL's."""
    generation = trainer.vllm_generation
    processor = trainer.processing_class
    tokenizer = getattr(processor, "tokenizer", processor)
    pad_id = getattr(processor, "image_token_id", None)
    log = RolloutLog()
    generation.generation_kwargs = {
        **(generation.generation_kwargs or {}),
        "logit_bias": vision_logit_bias(tokenizer),
    }

    def sync() -> None:
        start = time.perf_counter()
        sync_weights(generation)
        log.sync_seconds.append(time.perf_counter() - start)

    original_generate = generation.generate
    llm_generate = generation.llm.generate

    def record_params(prompts: Any, sampling_params: Any = None, **kwargs: Any) -> Any:
        log.logit_bias.append(getattr(sampling_params, "logit_bias", None))
        return llm_generate(prompts, sampling_params=sampling_params, **kwargs)

    def generate(prompts, images, num_generations, profiler=None):  # noqa: ANN001, ANN202
        sent = prompts
        if images is not None and pad_id is not None:
            sent = [collapse_image_pads(ids, pad_id) for ids in prompts]
        result = original_generate(sent, images, num_generations, profiler)
        prompt_ids, completion_ids = result[0], result[1]
        equal = [list(a) == list(b) for a, b in zip(prompt_ids, prompts, strict=True)]
        log.prompts_equal.extend(equal)
        log.completions.extend(list(ids) for ids in completion_ids)
        if strict and not all(equal):
            raise RuntimeError("vLLM's prompt ids differ from TRL's (image pads expanded twice?)")
        return result

    generation.sync_weights = sync
    generation.generate = generate
    generation.llm.generate = record_params
    return log


def rollout_context_len(processor: Any, messages: Any, max_pixels: int, completion: int) -> int:
    """vLLM's max_model_len for GRPO rollouts: the prompt with its images at the pixel bound
    plus the longest completion."""
    from app.quality.vllm_sizing import image_tokens, max_model_len

    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    images = processor.image_processor
    per_image = image_tokens(
        max_pixels, getattr(images, "patch_size", 14), getattr(images, "merge_size", 2)
    )
    return max_model_len(len(ids), text.count(processor.image_token), per_image, completion)


def trl_vllm_args(context_len: int | None, gpu_memory: float) -> dict[str, Any]:
    """GRPOConfig arguments for colocated vLLM rollouts; none (hf rollouts) without a length."""
    if context_len is None:
        return {}
    return {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_gpu_memory_utilization": gpu_memory,
        "vllm_max_model_length": context_len,
    }


def rollouts_via_vllm(backend: str) -> bool:
    """Whether GRPO rollouts go through vLLM: asked for and installed (at the tested versions);
    hf otherwise, with a warning when vLLM was asked for."""
    if backend != "vllm":
        return False
    if not vllm_available():
        import warnings

        warnings.warn(
            "rollout_backend=vllm but vLLM is not installed: rollouts use hf", stacklevel=2
        )
        return False
    check_versions()
    return True
