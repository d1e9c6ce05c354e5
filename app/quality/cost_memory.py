"""An estimate of GPU memory per device for a GRPO full fine-tune (what `evoq plan` prints after
the time estimate): weights, gradients, AdamW state over fp32 master weights, the reference
model, activations at the micro-batch (with or without gradient checkpointing), the chunked
log-prob head and the sampling KV cache, with and without ZeRO-3."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

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
