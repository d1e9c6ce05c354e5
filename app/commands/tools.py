"""`evoq make-tiny-model`, `make-synthetic` and `demo`: build the test models, data and demo."""

from __future__ import annotations

import typer

from app.commands.options import resolve_model_option


def make_tiny_model(
    path: str = typer.Argument(..., help="Folder to write the model into (replaced if present)."),
    vocab: str = typer.Option("small", help="small: trained ~550-id BPE; qwen: Qwen's real vocab."),
    family: str = typer.Option(
        "qwen2.5-vl", help="Model family: qwen2-vl, qwen2.5-vl or qwen3-vl (app/quality/families)."
    ),
    seed: int = typer.Option(0, help="Seed of the random weights."),
    reasoning: bool = typer.Option(
        False,
        help="builtin:tiny-reasoning (implies --vocab qwen): Qwen's vocabulary and file layout, "
        "marked as a reasoning model, with a format prior (<think>...</think> then \\boxed{}).",
    ),
    retrain_prior: bool = typer.Option(
        False,
        help="With --reasoning: train the prior (~2 min) instead of applying the shipped one.",
    ),
) -> None:
    """Write a tiny random-weight Qwen-VL folder that loads like a real checkpoint."""
    if reasoning and family != "qwen2.5-vl":
        raise typer.BadParameter(
            "--reasoning builds the Qwen2.5-VL fixture only", param_hint="--family"
        )
    if reasoning:
        from app.demo.reasoning_prior import build_reasoning_model

        out = build_reasoning_model(path, seed=seed, use_asset=not retrain_prior)
        typer.echo(str(out))
        return
    from app.demo.tiny import build_tiny_model
    from app.quality.families import by_name

    try:
        by_name(family)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--family") from None
    typer.echo(str(build_tiny_model(path, vocab=vocab, family=family, seed=seed)))


def make_synthetic(
    out: str = typer.Argument(
        ..., help="Folder for prior/, pool/ and eval/ (images + labels.csv)."
    ),
    seed: int = typer.Option(0, help="Seed of every random choice."),
    size: int = typer.Option(56, help="Side of the square images in pixels."),
    counts: str = typer.Option("1100,1500,2000", help="Images in the prior,pool,eval splits."),
    distortions: str = typer.Option(
        "darken,contrast,noise", help="Distortion types (also: blur, jpeg)."
    ),
) -> None:
    """Write the synthetic labelled benchmark (MOS = 5 - distortion level; splits share no source)."""
    from app.demo.synthetic import SPLITS, SyntheticConfig, write_synthetic

    numbers = [int(c) for c in counts.split(",")]
    if len(numbers) != len(SPLITS):
        raise typer.BadParameter(f"give {len(SPLITS)} counts: {','.join(SPLITS)}")
    config = SyntheticConfig(
        seed=seed,
        size=size,
        counts=dict(zip(SPLITS, numbers, strict=True)),
        distortions=tuple(d.strip() for d in distortions.split(",")),
    )
    for split, n in write_synthetic(out, config).items():
        typer.echo(f"{split}: {n} images, labels in {out}/{split}/labels.csv")


def demo(
    out: str = typer.Option("evoq-demo", help="Folder for checkpoints, data, table and plot."),
    seed: int = typer.Option(0, help="Seed of data, prior and rounds."),
    rounds: int = typer.Option(2, help="Evolution rounds."),
    beta: float = typer.Option(0.05, help="KL penalty of GRPO (paper: 0.05; 0 = off)."),
    base: str | None = typer.Option(
        None,
        help="Start from this base (folder, or builtin:demo built once in the data directory) "
        "instead of training the prior into OUT; it must come from the same --seed.",
    ),
) -> None:
    """Offline learning demo: tiny model + weak prior, evolution rounds, a table per round."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    from app.demo.demo import DemoConfig, format_table, plot_rows, run_demo

    config = DemoConfig(seed=seed, rounds=rounds, beta=beta)
    base_dir = resolve_model_option(base) if base else None
    result = run_demo(config, work_dir=out, base_dir=base_dir)
    table = format_table(result.rows)
    typer.echo(table)
    folder = Path(out)
    (folder / "demo.md").write_text(table + "\n")
    (folder / "demo.json").write_text(
        json.dumps({"rows": [asdict(r) for r in result.rows], "timings": result.timings}, indent=2)
    )
    typer.echo(f"plot: {plot_rows(result.rows, folder / 'demo.png')}")
