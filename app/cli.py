"""The `evoq` command: serve, worker, migrate and the model/demo tools."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="EvoQuality: a self-improving image-quality service.", no_args_is_help=True)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default: EVOQ_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: EVOQ_PORT)."),
) -> None:
    """Migrate the database if needed, start the embedded worker if configured, serve the API."""
    from app.serve import run_server

    run_server(host=host, port=port)


@app.command()
def worker(
    queues: str = typer.Option("default,gpu", help="Comma-separated Celery queues to consume."),
    pool: str = typer.Option(
        "solo", help="Celery pool (solo on GPUs: CUDA does not survive fork)."
    ),
    concurrency: int = typer.Option(1, help="Worker processes/threads."),
    beat: bool = typer.Option(False, help="Also run Celery beat (continuous mode) in this worker."),
) -> None:
    """Run a Celery worker for the evolution pipeline."""
    from workers.run import run_worker

    run_worker(queues=queues.split(","), pool=pool, concurrency=concurrency, beat=beat)


@app.command()
def migrate(
    revision: str = typer.Argument("head", help="Alembic revision to upgrade to."),
) -> None:
    """Create or upgrade the registry schema (alembic upgrade)."""
    from app.db import migrate as run_migrations

    run_migrations(revision)
    typer.echo(f"database at revision {revision}")


@app.command("make-tiny-model")
def make_tiny_model(
    path: str = typer.Argument(..., help="Folder to write the model into (replaced if present)."),
    vocab: str = typer.Option("small", help="small: trained ~370-id BPE; qwen: Qwen's real vocab."),
    seed: int = typer.Option(0, help="Seed of the random weights."),
) -> None:
    """Write a tiny random-weight Qwen2.5-VL folder that loads like a real checkpoint."""
    from app.demo.tiny import build_tiny_model

    typer.echo(str(build_tiny_model(path, vocab=vocab, seed=seed)))


@app.command("make-synthetic")
def make_synthetic(
    out: str = typer.Argument(
        ..., help="Folder for prior/, pool/ and eval/ (images + labels.csv)."
    ),
    seed: int = typer.Option(0, help="Seed of every random choice."),
    size: int = typer.Option(56, help="Side of the square images in pixels."),
    counts: str = typer.Option("1100,500,360", help="Images in the prior,pool,eval splits."),
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


@app.command()
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


def resolve_model_option(model: str | None) -> str:
    """A --model/--base option as a loadable source: a registry version (`3` or `v3`), a folder,
    hub id or builtin:<name> (built into the data directory); None: the configured base model."""
    from app.model_sources import resolve_model_source
    from app.registry.bootstrap import models_dir
    from app.settings import get_settings

    settings = get_settings()
    version = (model or "").removeprefix("v")
    if version.isdigit() and not Path(model).exists():
        from app.db import session_scope
        from app.registry import service as registry

        with session_scope() as db:
            found = registry.get(db=db, version_id=int(version))
            if found is None:
                raise typer.BadParameter(f"no model version {version} in the registry")
            return found.checkpoint_path
    return resolve_model_source(model or settings.base_model, models_dir(settings))


@app.command("eval")
def evaluate(
    images: str = typer.Option(..., help="Folder holding the images named in the CSV."),
    labels: str = typer.Option(..., help="CSV with columns filename,mos (higher = better)."),
    model: str | None = typer.Option(
        None, help="Registry version (3 or v3), model folder or builtin:<name> (default: base)."
    ),
    mode: str = typer.Option("fast", help="fast (one forward) or sampled (mean of n samples)."),
    samples: int = typer.Option(8, help="Samples per image in sampled mode."),
    plot: str = typer.Option("eval-scatter.png", help="Where to write the scatter plot (PNG)."),
) -> None:
    """Score a labelled set and print n, SRCC, PLCC (raw, logistic) and KRCC; plot a scatter."""
    from app.model_sources import load_model
    from app.quality.evaluation import evaluate as run_eval
    from app.quality.evaluation import format_report, read_labels, scatter_plot

    if mode not in ("fast", "sampled"):
        raise typer.BadParameter("mode must be fast or sampled")
    rows, skipped = read_labels(labels, images)
    source = resolve_model_option(model)
    report = run_eval(load_model(source), rows, mode=mode, n=samples, skipped=skipped)
    typer.echo(format_report(report))
    typer.echo(f"plot: {scatter_plot(report, plot, title=source)}")


def main() -> None:
    """Entry point of the `evoq` console script."""
    app()


if __name__ == "__main__":
    main()
