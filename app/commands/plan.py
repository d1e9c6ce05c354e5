"""`evoq plan`: estimate a round's wall time and a fine-tune's memory per GPU."""

from __future__ import annotations

import typer


def plan(
    model_params: float = typer.Option(7e9, help="Model parameters (7e9 for a 7B model)."),
    gpus: int = typer.Option(8, help="GPUs the round runs on."),
    pairs: int = typer.Option(20_000, help="Pairs voted on (paper: 20,000)."),
    votes: int = typer.Option(32, help="Votes per pair K."),
    samples: int = typer.Option(32, help="GRPO samples per image G."),
    vote_mode: str = typer.Option("sampled", help="sampled or logits."),
    gpu_peak_flops: float = typer.Option(312e12, help="Peak FLOP/s of one GPU."),
    prefix_sharing: bool = typer.Option(
        True, help="Samples of one prompt share its prefill (vLLM); --no-prefix-sharing: HF."
    ),
    pairs_per_step: int = typer.Option(32, help="Pairs per optimizer step (all GPUs)."),
    micro_batch: int = typer.Option(
        16, help="Completions per GPU per forward/backward: 2*pairs_per_step*G/(GA*GPUs)."
    ),
    beta: float = typer.Option(0.05, help="KL weight; > 0 keeps a reference model in memory."),
) -> None:
    """Print ESTIMATES of a round's wall time per stage (FLOP count) and of a full fine-tune's
    memory per GPU on 1 and 8 GPUs, with their assumptions."""
    from app.quality.cost import (
        CostAssumptions,
        MemoryAssumptions,
        estimate_round,
        format_estimate,
        format_memory,
        memory_table,
    )

    if vote_mode not in ("sampled", "logits"):
        raise typer.BadParameter("vote-mode must be sampled or logits")
    positive = {
        "model-params": model_params,
        "gpus": gpus,
        "pairs": pairs,
        "votes": votes,
        "samples": samples,
        "gpu-peak-flops": gpu_peak_flops,
        "pairs-per-step": pairs_per_step,
        "micro-batch": micro_batch,
    }
    for name, value in positive.items():
        if not value > 0:
            raise typer.BadParameter(f"--{name} must be positive, got {value:g}")
    if beta < 0:
        raise typer.BadParameter(f"--beta must be 0 or more, got {beta:g}")
    assumptions = CostAssumptions(gpu_peak_flops=gpu_peak_flops, prefix_sharing=prefix_sharing)
    stages = estimate_round(
        model_params=model_params,
        gpus=gpus,
        pairs=pairs,
        votes=votes,
        samples=samples,
        vote_mode=vote_mode,
        assumptions=assumptions,
    )
    typer.echo(
        f"round: {model_params:.3g} parameters, {gpus} GPU(s), {pairs} pairs, K={votes} "
        f"{vote_mode} votes, G={samples}"
    )
    typer.echo(format_estimate(stages, assumptions))
    memory = MemoryAssumptions()
    rows = memory_table(
        model_params=model_params,
        micro_batch=micro_batch,
        completions_per_step=2 * pairs_per_step * samples,
        reference_model=beta > 0,
        gpu_counts=tuple(sorted({1, 8, gpus})),
        assumptions=memory,
    )
    typer.echo("")
    typer.echo(format_memory(rows, micro_batch, memory))
