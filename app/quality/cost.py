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


def _duration(seconds: float) -> str:
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
            f"  {stage.stage:<10} {_duration(stage.seconds):>10}  {stage.seconds / total:5.1%}"
        )
        for part, secs in stage.parts.items():
            lines.append(f"    {part:<28} {_duration(secs):>10}")
    lines += [f"  {'total':<10} {_duration(total):>10}", "", "assumptions:"]
    for f in fields(assumptions):
        lines.append(f"  {f.name} = {getattr(assumptions, f.name)}  ({f.metadata['help']})")
    lines.append(
        "  FLOPs: 2N per token forward, 8N per trained token (policy 6N + reference 2N); "
        "attention's quadratic term ignored"
    )
    return "\n".join(lines)


# Memory per GPU of a GRPO full fine-tune (what `evoq plan` prints after the time estimate).

GB = 1e9


@dataclass(frozen=True)
class MemoryAssumptions:
    """Sizes and byte counts behind the memory estimate; defaults: Qwen2.5-VL-7B's language
    model, fp32 master weights with bf16 autocast and AdamW, TRL's chunked log-probabilities."""

    hidden_size: int = field(default=3584, metadata={"help": "Text hidden size h."})
    intermediate_size: int = field(default=18944, metadata={"help": "MLP width I (SwiGLU)."})
    num_layers: int = field(default=28, metadata={"help": "Decoder layers L."})
    kv_fraction: float = field(
        default=4 / 28, metadata={"help": "Key/value heads over query heads (GQA)."}
    )
    vocab_size: int = field(default=152064, metadata={"help": "LM head rows V."})
    param_bytes: float = field(
        default=4, metadata={"help": "Per parameter: fp32 master weights (autocast reads them)."}
    )
    grad_bytes: float = field(default=4, metadata={"help": "Per parameter: fp32 gradients."})
    optimizer_bytes: float = field(
        default=8, metadata={"help": "Per parameter: AdamW exp_avg + exp_avg_sq in fp32."}
    )
    reference_bytes: float = field(
        default=4,
        metadata={"help": "Per parameter: reference model (beta > 0), loaded like the policy."},
    )
    autocast_copy_bytes: float = field(
        default=2, metadata={"help": "Per parameter, without ZeRO: bf16 copies autocast saves."}
    )
    activation_bytes: float = field(
        default=2, metadata={"help": "Per saved activation element (bf16 autocast)."}
    )
    prompt_tokens: int = field(default=330, metadata={"help": "Tokens of a score prompt."})
    completion_tokens: int = field(
        default=1024, metadata={"help": "Completion tokens per row (batches pad to the longest)."}
    )
    logprob_tile: tuple[int, int] = field(
        default=(4096, 32768),
        metadata={"help": "Positions x vocabulary columns of one fp32 log-prob tile (TRL)."},
    )
    zero3_live_parameters: float = field(
        default=1e9, metadata={"help": "ZeRO-3 gathered bf16 parameters (stage3_max_live_...)."}
    )
    gpu_memory_gb: float = field(default=80.0, metadata={"help": "Memory of one GPU (GB)."})


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU of one training setup: states held throughout, then the larger of the
    update's (activations, log-prob head) and sampling's (KV cache) working memory."""

    gpus: int
    zero3: bool
    gradient_checkpointing: bool
    states: dict[str, float]  # part -> bytes per GPU
    update: dict[str, float]
    sampling: dict[str, float]

    @property
    def parts(self) -> dict[str, float]:
        return {**self.states, **self.update, **self.sampling}

    @property
    def total(self) -> float:
        return sum(self.states.values()) + max(
            sum(self.update.values()), sum(self.sampling.values())
        )


def layer_activation_elements(a: MemoryAssumptions) -> float:
    """Elements one decoder layer saves for backward per token: attention 5h + 2·kv·h (norm
    input and output, q, k, v, attention output, o_proj input), MLP 2h + 4I (norm input and
    output, gate, up, silu(gate), their product); fused attention keeps no score matrix."""
    h, i = a.hidden_size, a.intermediate_size
    return 7 * h + 2 * a.kv_fraction * h + 4 * i


def kv_bytes_per_token(a: MemoryAssumptions) -> float:
    """Key and value cache bytes of one token over all layers (GQA: kv_fraction of h each)."""
    return 2 * a.kv_fraction * a.hidden_size * a.num_layers * a.activation_bytes


def activation_bytes(micro_batch: int, checkpointing: bool, a: MemoryAssumptions) -> float:
    """Saved activations of one micro-batch of `micro_batch` completions: every layer's, or
    with gradient checkpointing each layer's input plus one layer recomputed in backward."""
    tokens = micro_batch * (a.prompt_tokens + a.completion_tokens)
    layer = layer_activation_elements(a) * a.activation_bytes * tokens
    if checkpointing:
        return a.num_layers * a.hidden_size * a.activation_bytes * tokens + layer
    return a.num_layers * layer


def estimate_memory(
    *,
    model_params: float,
    gpus: int,
    zero3: bool,
    micro_batch: int,
    gradient_checkpointing: bool,
    sampled_rows: int = 0,
    reference_model: bool = True,
    assumptions: MemoryAssumptions | None = None,
) -> MemoryEstimate:
    """Bytes per GPU of a full fine-tune: without ZeRO every GPU holds all states (DDP); ZeRO-3
    shards weights, gradients, optimizer and the reference model over `gpus` and gathers up to
    `zero3_live_parameters` at a time. The update holds one micro-batch's activations; sampling
    holds the KV cache of `sampled_rows` completions (one GPU's share of a step)."""
    if min(model_params, gpus, micro_batch) <= 0 or sampled_rows < 0:
        raise ValueError("model_params, gpus and micro_batch must be positive")
    a = assumptions or MemoryAssumptions()
    shards = gpus if zero3 else 1
    per_param = {
        "weights": a.param_bytes,
        "grads": a.grad_bytes,
        "AdamW": a.optimizer_bytes,
        "reference": a.reference_bytes if reference_model else 0.0,
    }
    states = {name: model_params * per / shards for name, per in per_param.items()}
    # ZeRO-3 gathers bf16 layers on the fly (nothing to gather on one GPU); without it, autocast
    # keeps a bf16 copy of every weight from the forward until the backward has used it.
    gathered = min(a.zero3_live_parameters, model_params) * 2 if zero3 and gpus > 1 else 0.0
    states["ZeRO-3 live"] = gathered
    rows, cols = a.logprob_tile
    tokens = micro_batch * a.completion_tokens
    update = {
        "autocast copy": 0.0 if zero3 else model_params * a.autocast_copy_bytes,
        "activations": activation_bytes(micro_batch, gradient_checkpointing, a),
        # One fp32 tile of logits, and in backward the head's gradient accumulated in fp32.
        "logp head": (min(rows, tokens) * cols + a.vocab_size * a.hidden_size) * 4,
    }
    sequence = a.prompt_tokens + a.completion_tokens
    sampling = {"sampling KV": sampled_rows * sequence * kv_bytes_per_token(a)}
    return MemoryEstimate(gpus, zero3, gradient_checkpointing, states, update, sampling)


def memory_table(
    *,
    model_params: float,
    micro_batch: int,
    completions_per_step: int = 0,
    reference_model: bool = True,
    gpu_counts: tuple[int, ...] = (1, 8),
    assumptions: MemoryAssumptions | None = None,
) -> list[MemoryEstimate]:
    """Estimates for each GPU count, with and without ZeRO-3 and gradient checkpointing; each
    GPU samples its share of `completions_per_step` at once and trains `micro_batch` at a time."""
    return [
        estimate_memory(
            model_params=model_params,
            gpus=gpus,
            sampled_rows=-(-completions_per_step // gpus),
            zero3=zero3,
            micro_batch=micro_batch,
            gradient_checkpointing=ckpt,
            reference_model=reference_model,
            assumptions=assumptions,
        )
        for gpus in gpu_counts
        for zero3 in (False, True)
        for ckpt in (False, True)
    ]


def format_memory(
    rows: list[MemoryEstimate], micro_batch: int, assumptions: MemoryAssumptions
) -> str:
    """The memory table as text: GB per GPU by part, the total and whether it fits one GPU."""
    names = list(dict.fromkeys(n for r in rows for n in r.parts))
    a = assumptions
    header = ["setup", *names, "total", "fits"]
    widths = [17] + [max(len(n), 6) for n in header[1:]]
    lines = [
        f"ESTIMATE of memory per GPU (GB) for a full fine-tune, micro-batch {micro_batch} "
        f"completions of {a.prompt_tokens}+{a.completion_tokens} tokens:",
        "",
        "  " + " ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)),
    ]
    for r in rows:
        setup = f"{r.gpus} GPU{' ZeRO-3' if r.zero3 else ''}{' ckpt' if r.gradient_checkpointing else ''}"
        cells = [setup, *(f"{r.parts.get(n, 0.0) / GB:.1f}" for n in names), f"{r.total / GB:.1f}"]
        cells.append("yes" if r.total <= a.gpu_memory_gb * GB else "no")
        lines.append("  " + " ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    lines += [
        "",
        f"total = states + max(update, sampling); fits: total <= {a.gpu_memory_gb:g} GB; "
        "ckpt: gradient checkpointing",
        "assumptions:",
    ]
    for f in fields(a):
        lines.append(f"  {f.name} = {getattr(a, f.name)}  ({f.metadata['help']})")
    lines.append(
        "  left out: the vision tower's activations, allocator fragmentation, the CUDA context"
    )
    return "\n".join(lines)


# Time and memory per stage side by side (the table `evoq plan` prints first).


@dataclass(frozen=True)
class StagePlan:
    """One stage on `gpus` GPUs: its estimated seconds and bytes per GPU, by part."""

    stage: str
    gpus: int
    seconds: float
    memory: dict[str, float]  # part -> bytes per GPU

    @property
    def memory_total(self) -> float:
        return sum(self.memory.values())


def inference_memory(
    *,
    model_params: float,
    models: int,
    rows: int,
    tokens: int,
    assumptions: MemoryAssumptions | None = None,
) -> dict[str, float]:
    """Bytes per GPU of generating with `models` whole bf16 models on each GPU (inference is
    split by data, not by weights), each holding the KV cache of `rows` sequences of `tokens`."""
    a = assumptions or MemoryAssumptions()
    return {
        "weights bf16": models * 2.0 * model_params,
        "KV cache": models * rows * tokens * kv_bytes_per_token(a),
    }


def plan_stages(
    *,
    model_params: float,
    gpus: int,
    pairs: int,
    votes: int,
    samples: int,
    vote_mode: str,
    micro_batch: int,
    vote_batch: int = 8,
    reference_model: bool = True,
    cost: CostAssumptions | None = None,
    memory: MemoryAssumptions | None = None,
) -> list[StagePlan]:
    """Seconds and memory per GPU of vote, train and evaluate on `gpus` GPUs. Votes sample K
    answers for `vote_batch` pairs at once; training is a ZeRO-3 (one GPU: plain)
    checkpointed full fine-tune whose GPUs sample their share of a step's completions, in a
    colocated vLLM engine holding its own bf16 weights with the vllm backend; evaluation holds
    parent and candidate and reads logits (prefill only)."""
    c = cost or CostAssumptions()
    m = memory or MemoryAssumptions()
    times = {
        s.stage: s.seconds
        for s in estimate_round(
            model_params=model_params,
            gpus=gpus,
            pairs=pairs,
            votes=votes,
            samples=samples,
            vote_mode=vote_mode,
            assumptions=c,
        )
    }
    sampled = vote_mode == "sampled"
    vote = inference_memory(
        model_params=model_params,
        models=1,
        rows=vote_batch * (votes if sampled else 2),
        tokens=c.vote_prompt_tokens + (c.vote_answer_tokens if sampled else 1),
        assumptions=m,
    )
    rows = -(-2 * c.pairs_per_step * samples // gpus)  # this GPU's share of a step's samples
    vllm = c.backend == "vllm"
    train = estimate_memory(
        model_params=model_params,
        gpus=gpus,
        zero3=True,
        micro_batch=micro_batch,
        gradient_checkpointing=True,
        sampled_rows=0 if vllm else rows,
        reference_model=reference_model,
        assumptions=m,
    )
    train_parts = {"training states": sum(train.states.values())}
    train_parts["update or sampling"] = train.total - train_parts["training states"]
    if vllm:  # the engine is held beside training (no sleep mode assumed)
        engine = inference_memory(
            model_params=model_params,
            models=1,
            rows=rows,
            tokens=m.prompt_tokens + m.completion_tokens,
            assumptions=m,
        )
        train_parts["vLLM engine"] = sum(engine.values())
    evaluate = inference_memory(
        model_params=model_params,
        models=2,
        rows=2 * vote_batch,
        tokens=c.vote_prompt_tokens + 1,
        assumptions=m,
    )
    memories = {"vote": vote, "train": train_parts, "evaluate": evaluate}
    return [StagePlan(name, gpus, times[name], memories[name]) for name in times]


def format_stage_plans(plans: list[StagePlan], assumptions: MemoryAssumptions) -> str:
    """Time and memory per GPU of each stage, one column pair per GPU count."""
    counts = sorted({p.gpus for p in plans})
    stages = list(dict.fromkeys(p.stage for p in plans))
    cell = {(p.stage, p.gpus): p for p in plans}
    head = "".join(f"{f'{n} GPU time':>14}{f'{n} GPU GB':>12}" for n in counts)
    lines = [
        "ESTIMATE per stage: round wall time and peak memory per GPU (GB)",
        "",
        f"  {'stage':<10}{head}",
    ]
    for stage in stages:
        row = "".join(
            f"{_duration(cell[stage, n].seconds):>14}{cell[stage, n].memory_total / GB:>12.1f}"
            for n in counts
        )
        lines.append(f"  {stage:<10}{row}")
    totals = "".join(
        f"{_duration(sum(cell[s, n].seconds for s in stages)):>14}"
        f"{max(cell[s, n].memory_total for s in stages) / GB:>12.1f}"
        for n in counts
    )
    lines.append(f"  {'round':<10}{totals}")
    for n in counts:
        over = [s for s in stages if cell[s, n].memory_total > assumptions.gpu_memory_gb * GB]
        if over:
            lines.append(
                f"  on {n} GPU(s) {', '.join(over)} exceed(s) {assumptions.gpu_memory_gb:g} GB"
            )
    parts = "; ".join(
        f"{s}: " + ", ".join(f"{k} {v / GB:.1f}" for k, v in cell[s, counts[-1]].memory.items())
        for s in stages
    )
    lines.append(f"  memory parts on {counts[-1]} GPU(s), GB: {parts}")
    return "\n".join(lines)
