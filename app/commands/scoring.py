"""`evoq eval` and `evoq score`: score a labelled set, or files through a server or a local model."""

from __future__ import annotations

from pathlib import Path

import typer

from app.commands.options import SCORE_MODES, fail, load_model_option, model_help


def evaluate(
    images: str = typer.Option(..., help="Folder holding the images named in the CSV."),
    labels: str = typer.Option(..., help="CSV with columns filename,mos (higher = better)."),
    model: str | None = typer.Option(None, help=model_help()),
    mode: str = typer.Option(
        "auto",
        help="auto (the model's serving mode: deterministic for a reasoning model, else fast), "
        "deterministic (greedy reasoning, then the rating digits at the box), fast (one "
        "forward) or sampled (mean of n samples).",
    ),
    samples: int = typer.Option(8, min=1, help="Samples per image in sampled mode."),
    plot: str = typer.Option("eval-scatter.png", help="Where to write the scatter plot (PNG)."),
    out: str | None = typer.Option(
        None, help="Per-image results (filename, mos, score, std): a .csv or .jsonl file."
    ),
    limit: int | None = typer.Option(
        None, min=1, help="Score only this many rows, drawn at random with --seed."
    ),
    seed: int = typer.Option(0, help="Seeds --limit's draw and the sampled scores."),
    batch_size: int = typer.Option(16, min=1, help="Images read and scored at a time."),
) -> None:
    """Score a labelled set and print n, SRCC, PLCC (raw, logistic) and KRCC; plot a scatter."""
    from tqdm import tqdm

    from app.quality.evaluation import evaluate as run_eval
    from app.quality.evaluation import (
        format_report,
        per_image_rows,
        read_labels,
        scatter_plot,
        subset,
    )
    from app.records import check_suffix, write_records

    if mode not in SCORE_MODES:
        raise fail(f"--mode must be one of {', '.join(SCORE_MODES)}")
    if not Path(images).is_dir():
        raise fail(f"images folder not found: {images}")
    try:
        out_path = check_suffix(out) if out else None
        rows, skipped = read_labels(labels, images)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from exc
    rows = subset(rows, limit, seed)
    if not rows:
        raise fail(f"{labels} lists no usable row")
    loaded, name = load_model_option(model)
    with tqdm(total=len(rows), desc="scoring", unit="img") as bar:
        report = run_eval(
            loaded,
            rows,
            mode=loaded.serving_mode("score") if mode == "auto" else mode,
            n=samples,
            seed=seed,
            batch_size=batch_size,
            skipped=skipped,
            on_progress=bar.update,
        )
    typer.echo(format_report(report))
    if out_path:
        typer.echo(
            f"per-image: {write_records(out_path, per_image_rows(report), ('filename', 'mos', 'score', 'std'))}"
        )
    if report.n < 2:
        raise fail(f"only {report.n} image(s) could be scored; no correlation to report", 1)
    dataset = Path(labels).resolve().parent.name or Path(images).resolve().name
    title = f"{name} on {dataset} ({Path(labels).name})"
    typer.echo(f"plot: {scatter_plot(report, plot, title=title)}")


def score(
    paths: list[str] = typer.Argument(..., help="Image files and folders (searched recursively)."),
    server: str | None = typer.Option(
        None, help="Score through this running server (e.g. http://127.0.0.1:8000)."
    ),
    model: str | None = typer.Option(
        None, help="Score in this process, no server: " + model_help()
    ),
    mode: str = typer.Option(
        "auto",
        help="auto (the model's serving mode: deterministic for a reasoning model, else fast), "
        "deterministic, fast (one forward) or sampled (mean of samples).",
    ),
    samples: int = typer.Option(8, min=1, max=64, help="Samples per image in sampled mode."),
    out: str | None = typer.Option(
        None, help="Write filename,sha256,score,std,version to a .csv or .jsonl file."
    ),
    seed: int = typer.Option(0, help="Seed of sampled scores (local model only)."),
    batch_size: int = typer.Option(16, min=1, help="Images per request / model call."),
    token: str | None = typer.Option(
        None, envvar="EVOQ_TOKEN", help="Bearer token for --server (when it needs a read token)."
    ),
) -> None:
    """Score image files and folders, through a server (--server) or a local model (--model;
    neither: the configured base model, locally). Unreadable files are skipped with the reason."""
    from tqdm import tqdm

    from app.client import ApiError, Client
    from app.records import check_suffix, write_records
    from app.score_files import COLUMNS, find_images, score_locally, score_with_server

    if server and model:
        raise fail("give --server or --model, not both")
    if mode not in SCORE_MODES:
        raise fail(f"--mode must be one of {', '.join(SCORE_MODES)}")
    try:
        out_path = check_suffix(out) if out else None
    except ValueError as exc:
        raise fail(str(exc)) from exc
    files, missing = find_images(paths)
    if not files:
        raise fail("no image files found in " + ", ".join(paths))
    with tqdm(total=len(files), desc="scoring", unit="img") as bar:
        if server:
            with Client(server, token=token) as api:
                try:
                    outcome = score_with_server(
                        api, files, mode=mode, samples=samples, batch_size=batch_size,
                        on_progress=bar.update,
                    )  # fmt: skip
                except ApiError as exc:
                    raise fail(f"{exc.code} ({exc.status}): {exc.detail}", 1) from exc
        else:
            loaded, name = load_model_option(model)
            outcome = score_locally(
                loaded, name, files, mode=mode, samples=samples, seed=seed,
                batch_size=batch_size, on_progress=bar.update,
            )  # fmt: skip
    outcome.skipped[:0] = missing
    for row in outcome.rows:
        score_text = "-" if row.score is None else f"{row.score:.3f}"
        typer.echo(f"{row.filename}\t{score_text}\t{row.std:.3f}\tv{row.version}")
    for name, reason in outcome.skipped:
        typer.echo(f"skipped {name}: {reason}", err=True)
    if out_path:
        typer.echo(f"results: {write_records(out_path, outcome.records(), COLUMNS)}")
    if not outcome.rows:
        raise fail("no image could be scored", 1)
