"""Time and memory per round stage side by side on 1 and 8 GPUs: the table `evoq plan` prints
first, joining the FLOP-count time model (cost.py) and the memory model (cost_memory.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.quality.cost import CostAssumptions, estimate_round, format_duration
from app.quality.cost_memory import GB, MemoryAssumptions, estimate_memory, kv_bytes_per_token


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
            f"{format_duration(cell[stage, n].seconds):>14}{cell[stage, n].memory_total / GB:>12.1f}"
            for n in counts
        )
        lines.append(f"  {stage:<10}{row}")
    totals = "".join(
        f"{format_duration(sum(cell[s, n].seconds for s in stages)):>14}"
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
