"""The GRPO round config and the pair dataset it trains on.

Each training pair becomes two adjacent dataset rows (image a, image b) that share a pair id and
p*; the dataset is shuffled at pair level here, TRL's own shuffling is off, and every generation
batch holds whole pairs, so both images of a pair reach the same reward call.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import sys
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datasets import Dataset

from app.quality import prompts
from app.quality.images import prepare_image
from app.quality.loading import reasoning_default
from app.quality.model import MAX_NEW_TOKENS
from app.quality.reward import GAMMA
from app.quality.voting import VoteResult


@dataclass
class GRPORoundConfig:
    """GRPO settings; defaults are the paper's, a caller shrinks them explicitly (e.g. for CPU)."""

    num_generations: int = field(default=32, metadata={"help": "Samples per image G (paper: 32)."})
    learning_rate: float = field(default=3e-7, metadata={"help": "AdamW lr, linear decay (paper)."})
    beta: float = field(
        default=0.05, metadata={"help": "k3 KL penalty to the round's start (paper)."}
    )
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of rollouts."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of rollouts (1 = off)."})
    top_k: int = field(default=0, metadata={"help": "Top-k sampling of rollouts (0 = off)."})
    pairs_per_step: int = field(
        default=32, metadata={"help": "Pairs per optimizer step (paper: 4 per GPU x 8 GPUs)."}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Micro-batches per step; 2*pairs_per_step must divide by it."}
    )
    max_steps: int | None = field(
        default=None, metadata={"help": "Optimizer steps; None = one pass over the training pairs."}
    )
    max_completion_length: int | None = field(
        default=None,
        metadata={
            "help": "Tokens per scoring response; None = the model's default for the prompt."
        },
    )
    mask_truncated_completions: bool | None = field(
        default=None,
        metadata={
            "help": "Leave completions cut off at max_completion_length out of the loss (TRL; "
            "DAPO): a cut-off reasoning has no answer to reward. None = on for the reasoning "
            "prompt, off for the answer-only one, where the format reward must see the "
            "rambling answers it penalises."
        },
    )
    reasoning: bool | None = field(
        default=None,
        metadata={
            "help": "Score prompt with the <think>/\\boxed{} instruction (paper); None = the "
            "model's default (on for real models, off for tiny test models)."
        },
    )
    format_reward_weight: float = field(
        default=0.0, metadata={"help": "Weight of a 0/1 parsable-score reward; 0 = off (paper)."}
    )
    loss_type: str = field(
        default="grpo", metadata={"help": "TRL loss aggregation; 'grpo' = the paper's objective."}
    )
    gamma: float = field(default=GAMMA, metadata={"help": "Eq. 2's variance floor."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping."})
    seed: int = field(default=0, metadata={"help": "Seeds pair order, sampling and init."})
    device: Literal["auto", "cpu", "cuda"] = field(
        default="auto", metadata={"help": "'auto' = CUDA when available, else CPU."}
    )
    precision: Literal["auto", "bf16", "fp32"] = field(
        default="auto",
        metadata={
            "help": "Compute precision: 'bf16' = bf16 autocast over fp32 master weights (the "
            "optimizer always steps fp32 weights, so lr 3e-7 updates land), 'fp32' = no "
            "autocast, 'auto' = bf16 on CUDA with bf16 support, else fp32. The checkpoint is "
            "saved in fp32 so updates accumulate across rounds (under DeepSpeed, the 16-bit "
            "weights its engine gathers)."
        },
    )
    max_pixels: int | None = field(
        default=None,
        metadata={
            "help": "Pixel bound of the training images, as voting and scoring bound them "
            "(EVOQ_MAX_PIXELS); never above the processor's own; None = the processor's own."
        },
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for memory on large models (GPU)."}
    )
    shared_prefill: bool = field(
        default=True,
        metadata={
            "help": "Prefill each prompt once for its G samples and log-probabilities "
            "(app/quality/grpo_prefix.py); False = TRL's own path, G prefills per prompt."
        },
    )
    num_processes: int = field(
        default=1,
        metadata={
            "help": "Processes training together (accelerate launch; one per GPU); each one "
            "generates and rewards pairs_per_step / num_processes whole pairs per step."
        },
    )
    deepspeed: str | None = field(
        default=None,
        metadata={"help": "DeepSpeed JSON config file (ZeRO-2/3 for full fine-tunes); None = off."},
    )
    rollout_backend: Literal["hf", "vllm"] = field(
        default="hf",
        metadata={
            "help": "Engine of the GRPO rollouts: hf (transformers generate) or vllm (TRL's "
            "colocated vLLM, app/quality/vllm_rollouts.py); vllm falls back to hf where vLLM "
            "is not installed."
        },
    )
    vllm_gpu_memory: float = field(
        default=0.3,
        metadata={
            "help": "Share of each GPU the colocated vLLM engine takes beside training "
            "(TRL's vllm_gpu_memory_utilization)."
        },
    )
    vllm_server_url: str | None = field(
        default=None,
        metadata={
            "help": "With rollout_backend vllm: a vLLM server's URL (TRL's server mode, for "
            "several GPUs: app/quality/vllm_server.py) instead of a colocated engine."
        },
    )

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ValueError("num_generations must be >= 2 (GRPO needs a group)")
        if self.num_processes < 1 or self.pairs_per_step % self.num_processes:
            raise ValueError(
                f"pairs_per_step ({self.pairs_per_step}) must be a multiple of num_processes "
                f"({self.num_processes}): each process rewards whole pairs"
            )
        if (2 * self.pairs_per_step // self.num_processes) % self.gradient_accumulation_steps:
            raise ValueError(
                "2 * pairs_per_step / num_processes must be divisible by gradient_accumulation_steps"
            )


def training_pairs(votes: Sequence[VoteResult]) -> list[VoteResult]:
    """The voted pairs GRPO may use: not holdout and with a label."""
    return [v for v in votes if not v.holdout and v.p_star is not None]


def _pair_schedule(pairs: Sequence[VoteResult], config: GRPORoundConfig) -> list[VoteResult]:
    """Pairs in training order: shuffled with the seed, cycled to fill max_steps, whole steps only."""
    order = list(pairs)
    random.Random(config.seed).shuffle(order)
    per_step = config.pairs_per_step
    n_steps = len(order) // per_step if config.max_steps is None else config.max_steps
    if not order:
        raise ValueError("no usable training pairs: every pair is holdout, unlabelled or filtered")
    if n_steps < 1:
        raise ValueError(f"{len(order)} training pairs cannot fill one step of {per_step} pairs")
    needed = n_steps * per_step
    return [order[k % len(order)] for k in range(needed)]


def resolve_prompting(config: GRPORoundConfig, model_dir: str | Path) -> GRPORoundConfig:
    """The config with reasoning, completion length and truncation masking filled in from the
    model's defaults."""
    reasoning = reasoning_default(str(model_dir)) if config.reasoning is None else config.reasoning
    length = config.max_completion_length or MAX_NEW_TOKENS[("score", reasoning)]
    mask = config.mask_truncated_completions
    return dataclasses.replace(
        config,
        reasoning=reasoning,
        max_completion_length=length,
        mask_truncated_completions=reasoning if mask is None else mask,
    )


def build_pair_dataset(
    pairs: Sequence[VoteResult],
    load_image: Callable[[Hashable], Any],
    config: GRPORoundConfig,
) -> Dataset:
    """Rows (prompt, image, image_id, pair_id, position, p_star), partners adjacent, step order.

    Images are loaded when a row is read (upright and within `config.max_pixels`, as the model
    votes on and scores them), not stored: a paper-sized round (~40k images) would not fit in
    memory. A small cache absorbs TRL reading each row once per generation.
    """
    messages = prompts.score_messages(bool(config.reasoning))
    keys: dict[str, Hashable] = {}
    rows = []
    for pair_id, vote in enumerate(_pair_schedule(pairs, config)):
        for position, key in ((0, vote.a), (1, vote.b)):
            keys[str(key)] = key
            rows.append(
                {
                    "prompt": messages,
                    "image_id": str(key),
                    "pair_id": pair_id,
                    "position": position,
                    "p_star": float(vote.p_star),
                }
            )
    bound = config.max_pixels or sys.maxsize

    @functools.lru_cache(maxsize=4 * config.pairs_per_step)
    def cached(key: Hashable) -> Any:
        # What QualityModel.encode does to a vote's or a score's image: upright, RGB, bounded.
        return prepare_image(load_image(key), bound)

    def attach_images(batch: dict[str, list]) -> dict[str, list]:
        batch["image"] = [cached(keys[name]) for name in batch["image_id"]]
        return batch

    return Dataset.from_list(rows).with_transform(attach_images)
