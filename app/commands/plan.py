"""`evoq plan`: estimate a round's wall time and memory per GPU, per stage."""

from __future__ import annotations

import typer


def plan(
    model_params: float = typer.Option(7e9, help="Model parameters (7e9 for a 7B model)."),
    gpus: int = typer.Option(8, help="GPUs the round runs on."),
    pairs: int = typer.Option(20_000, help="Pairs voted on (paper: 20,000)."),
    votes: int = typer.Option(32, help="Votes per pair K."),
    samples: int = typer.Option(32, help="GRPO samples per image G."),
    vote_mode: str = typer.Option("sampled", help="sampled or logits."),
    vote_tokens: int = typer.Option(
        None, help="Tokens per reasoning vote (default: the reasoning fixture's measured mean)."
    ),
    rollout_tokens: int = typer.Option(
        None, help="Tokens per GRPO sample (default: the reasoning fixture's measured mean)."
    ),
    backend: str = typer.Option("hf", help="Generation backend of votes and rollouts: hf or vllm."),
    gpu_peak_flops: float = typer.Option(312e12, help="Peak FLOP/s of one GPU."),
    prefix_sharing: bool = typer.Option(
        True, help="Samples of one prompt share its prefill; --no-prefix-sharing: each pays it."
    ),
    pairs_per_step: int = typer.Option(32, help="Pairs per optimizer step (all GPUs)."),
    micro_batch: int = typer.Option(
        16, help="Completions per GPU per forward/backward: 2*pairs_per_step*G/(GA*GPUs)."
    ),
    beta: float = typer.Option(0.05, help="KL weight; > 0 keeps a reference model in memory."),
) -> None:
    """Print ESTIMATES of a round's wall time and memory per GPU, per stage, on 1 and 8 GPUs
    (FLOP count), then the details: time parts and a full fine-tune's memory by setup."""
    from app.quality.cost import BACKENDS, CostAssumptions, estimate_round, format_estimate
    from app.quality.cost_memory import MemoryAssumptions, format_memory, memory_table
    from app.quality.cost_plan import format_stage_plans, plan_stages

    if vote_mode not in ("sampled", "logits"):
        raise typer.BadParameter("vote-mode must be sampled or logits")
    if backend not in BACKENDS:
        raise typer.BadParameter(f"--backend must be one of {', '.join(BACKENDS)}, got {backend}")
    defaults = CostAssumptions()
    vote_tokens = defaults.vote_answer_tokens if vote_tokens is None else vote_tokens
    rollout_tokens = defaults.score_answer_tokens if rollout_tokens is None else rollout_tokens
    positive = {
        "model-params": model_params,
        "gpus": gpus,
        "pairs": pairs,
        "votes": votes,
        "samples": samples,
        "vote-tokens": vote_tokens,
        "rollout-tokens": rollout_tokens,
        "gpu-peak-flops": gpu_peak_flops,
        "pairs-per-step": pairs_per_step,
        "micro-batch": micro_batch,
    }
    for name, value in positive.items():
        if not value > 0:
            raise typer.BadParameter(f"--{name} must be positive, got {value:g}")
    if beta < 0:
        raise typer.BadParameter(f"--beta must be 0 or more, got {beta:g}")
    assumptions = CostAssumptions(
        gpu_peak_flops=gpu_peak_flops,
        prefix_sharing=prefix_sharing,
        vote_answer_tokens=vote_tokens,
        score_answer_tokens=rollout_tokens,
        backend=backend,
        pairs_per_step=pairs_per_step,
    )
    memory = MemoryAssumptions()
    counts = tuple(sorted({1, 8, gpus}))
    plans = [
        stage
        for n in counts
        for stage in plan_stages(
            model_params=model_params,
            gpus=n,
            pairs=pairs,
            votes=votes,
            samples=samples,
            vote_mode=vote_mode,
            micro_batch=micro_batch,
            reference_model=beta > 0,
            cost=assumptions,
            memory=memory,
        )
    ]
    typer.echo(
        f"round: {model_params:.3g} parameters, {pairs} pairs, K={votes} {vote_mode} votes of "
        f"{vote_tokens} tokens, G={samples} rollouts of {rollout_tokens} tokens, backend {backend}"
    )
    typer.echo(format_stage_plans(plans, memory))
    stages = estimate_round(
        model_params=model_params,
        gpus=gpus,
        pairs=pairs,
        votes=votes,
        samples=samples,
        vote_mode=vote_mode,
        assumptions=assumptions,
    )
    typer.echo("")
    typer.echo(f"details on {gpus} GPU(s):")
    typer.echo(format_estimate(stages, assumptions))
    rows = memory_table(
        model_params=model_params,
        micro_batch=micro_batch,
        completions_per_step=2 * pairs_per_step * samples,
        reference_model=beta > 0,
        gpu_counts=counts,
        assumptions=memory,
    )
    typer.echo("")
    typer.echo(format_memory(rows, micro_batch, memory))
