"""An estimate of a round's wall time per stage from a FLOP count (what `evoq plan` prints).

FLOPs: a forward pass costs 2·N per token (N = parameters), a training step 6·N per token
(forward and backward) plus 2·N for the reference model's forward (the KL term). Prompt tokens
(prefill) are compute-bound and run at `mfu_prefill`; generated tokens (decode) are bound by
memory bandwidth and reach a much lower share of peak, `mfu_decode`, even when batched. With
`prefix_sharing` (vLLM, n=K) the K samples of one prompt share its prefill; without it (HF
generate) every sample pays it. Attention's quadratic term is left out (prompts are short).
The backend sets decode's efficiency: vLLM's paged, continuously batched decode (`mfu_decode`)
or transformers' `generate` (`mfu_decode_hf`); with vLLM each optimizer step also copies the
bf16 weights into the engine (`sync_bytes_per_s`). Vote and rollout lengths default to the
reasoning fixture's measured means (builtin:tiny-reasoning; see VOTE_TOKENS and ROLLOUT_TOKENS).
This is an estimate: real runs differ with the engine, sequence lengths and batch sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

BACKENDS = ("hf", "vllm")
# Mean completion tokens of builtin:tiny-reasoning's sampled reasoning answers (temperature 1,
# seed 0): 8 pairs x K=8 to the compare prompt, 145.2 (4 of 64 unparsed); 8 images x 8 samples
# to the score prompt, 154.9 (60 of 64 parsed). `benchmarks/bench_rollouts.py --measure-lengths`
# measures them again. The paper's prompts ask the same <think> ... </think> \boxed{} answers.
VOTE_TOKENS = 145
ROLLOUT_TOKENS = 155


@dataclass(frozen=True)
class CostAssumptions:
    """Token counts and hardware efficiency behind the estimate; defaults: Qwen2.5-VL at
    448x448 (256 visual tokens per image), answer-only votes, reasoning scores, A100 bf16."""

    vote_prompt_tokens: int = field(
        default=620, metadata={"help": "Tokens of a compare prompt (2 images + text)."}
    )
    vote_answer_tokens: int = field(
        default=VOTE_TOKENS, metadata={"help": "Tokens generated per sampled (reasoning) vote."}
    )
    score_prompt_tokens: int = field(
        default=330, metadata={"help": "Tokens of a score prompt (1 image + text)."}
    )
    score_answer_tokens: int = field(
        default=ROLLOUT_TOKENS,
        metadata={"help": "Tokens generated per GRPO sample (with reasoning)."},
    )
    gpu_peak_flops: float = field(
        default=312e12, metadata={"help": "Peak FLOP/s of one GPU (A100 bf16 dense: 312e12)."}
    )
    mfu_prefill: float = field(default=0.4, metadata={"help": "Share of peak in prefill."})
    backend: str = field(default="hf", metadata={"help": "Generation backend: hf or vllm."})
    mfu_decode: float = field(
        default=0.1, metadata={"help": "Share of peak in vLLM's batched decode."}
    )
    mfu_decode_hf: float = field(
        default=0.03,
        metadata={"help": "Share of peak in HF generate's decode (padded, no paged KV)."},
    )
    sync_bytes_per_s: float = field(
        default=20e9,
        metadata={"help": "vLLM weight sync: bf16 weight bytes copied per second per GPU."},
    )
    pairs_per_step: int = field(default=32, metadata={"help": "Pairs per optimizer step."})
    mfu_train: float = field(default=0.35, metadata={"help": "Share of peak in training steps."})
    prefix_sharing: bool = field(
        default=True, metadata={"help": "K samples share one prefill (vLLM n=K)."}
    )
    holdout_fraction: float = field(default=0.1, metadata={"help": "Pairs kept out of training."})


@dataclass(frozen=True)
class StageCost:
    """One stage's estimated FLOPs and seconds, split into its parts."""

    stage: str
    seconds: float
    parts: dict[str, float]  # part -> seconds


def estimate_round(
    *,
    model_params: float,
    gpus: int,
    pairs: int,
    votes: int,
    samples: int,
    vote_mode: str = "sampled",
    assumptions: CostAssumptions | None = None,
) -> list[StageCost]:
    """Estimated seconds of each stage of one round (vote, train, evaluate) on `gpus` GPUs."""
    a = assumptions or CostAssumptions()
    if a.backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {a.backend!r}")
    if min(model_params, gpus, pairs, votes, samples) <= 0:
        raise ValueError("model_params, gpus, pairs, votes and samples must be positive")
    forward = 2.0 * model_params
    mfu_decode = a.mfu_decode if a.backend == "vllm" else a.mfu_decode_hf

    def seconds(flops: float, mfu: float) -> float:
        return flops / (gpus * a.gpu_peak_flops * mfu)

    # Voting: both orders of each pair; logits votes are one prefill per order, no decode.
    prompts_per_pair = 2 if (vote_mode == "logits" or a.prefix_sharing) else votes
    vote_parts = {
        "prefill": seconds(pairs * prompts_per_pair * a.vote_prompt_tokens * forward, a.mfu_prefill)
    }
    if vote_mode == "sampled":
        decode = pairs * votes * a.vote_answer_tokens * forward
        vote_parts["decode"] = seconds(decode, mfu_decode)
    train_images = 2 * pairs * (1.0 - a.holdout_fraction)
    prefills = train_images * (1 if a.prefix_sharing else samples)
    completion_tokens = train_images * samples * (a.score_prompt_tokens + a.score_answer_tokens)
    train_parts = {
        "rollout prefill": seconds(prefills * a.score_prompt_tokens * forward, a.mfu_prefill),
        "rollout decode": seconds(
            train_images * samples * a.score_answer_tokens * forward, mfu_decode
        ),
        # Policy forward + backward (6N) and the reference model's forward (2N) per token.
        "policy update": seconds(completion_tokens * 4.0 * forward, a.mfu_train),
    }
    if a.backend == "vllm":
        # Every optimizer step copies the bf16 weights into each GPU's colocated engine.
        steps = pairs * (1.0 - a.holdout_fraction) / a.pairs_per_step
        train_parts["weight sync"] = steps * 2.0 * model_params / a.sync_bytes_per_s
    holdout = pairs * a.holdout_fraction
    eval_parts = {
        "holdout compare (2 models)": seconds(
            holdout * 2 * 2 * a.vote_prompt_tokens * forward, a.mfu_prefill
        )
    }
    return [
        StageCost(name, sum(parts.values()), parts)
        for name, parts in (("vote", vote_parts), ("train", train_parts), ("evaluate", eval_parts))
    ]


def format_duration(seconds: float) -> str:
    """Seconds as "1.2 h", "3.4 min" or "5.6 s"."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def format_estimate(stages: list[StageCost], assumptions: CostAssumptions) -> str:
    """The estimate as text: stages, their parts and share of the round, then the assumptions."""
    total = sum(s.seconds for s in stages)
    lines = ["ESTIMATE of one round's wall time (FLOP count, not a measurement):", ""]
    for stage in stages:
        lines.append(
            f"  {stage.stage:<10} {format_duration(stage.seconds):>10}  {stage.seconds / total:5.1%}"
        )
        for part, secs in stage.parts.items():
            lines.append(f"    {part:<28} {format_duration(secs):>10}")
    lines += [f"  {'total':<10} {format_duration(total):>10}", "", "assumptions:"]
    for f in fields(assumptions):
        lines.append(f"  {f.name} = {getattr(assumptions, f.name)}  ({f.metadata['help']})")
    lines.append(
        "  FLOPs: 2N per token forward, 8N per trained token (policy 6N + reference 2N); "
        "attention's quadratic term ignored"
    )
    return "\n".join(lines)
