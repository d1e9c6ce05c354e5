"""The `evoq` command: serve, worker, migrate and the model/demo tools."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="EvoQuality: a self-improving image-quality service.", no_args_is_help=True)
# The modes of QualityModel.score; "auto" is the model's serving mode (app.quality.model).
SCORE_MODES = ("auto", "deterministic", "fast", "sampled")


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
    name: str | None = typer.Option(
        None, help="Node name (name@host); give each worker on one host its own."
    ),
) -> None:
    """Run a Celery worker for the evolution pipeline (start one per GPU to fan out voting)."""
    from workers.run import run_worker

    run_worker(queues=queues.split(","), pool=pool, concurrency=concurrency, beat=beat, name=name)


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
    vocab: str = typer.Option("small", help="small: trained ~550-id BPE; qwen: Qwen's real vocab."),
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
    """Write a tiny random-weight Qwen2.5-VL folder that loads like a real checkpoint."""
    if reasoning:
        from app.demo.reasoning_prior import build_reasoning_model

        out = build_reasoning_model(path, seed=seed, use_asset=not retrain_prior)
        typer.echo(str(out))
        return
    from app.demo.tiny import build_tiny_model

    typer.echo(str(build_tiny_model(path, vocab=vocab, seed=seed)))


@app.command("make-synthetic")
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


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _model_help() -> str:
    from app.settings import Settings

    default = Settings.model_fields["base_model"].default
    return (
        "Registry version (3 or v3), model folder, hub id or builtin:<name> "
        f"(default: EVOQ_BASE_MODEL, which is {default} unless set)."
    )


def load_model_option(model: str | None) -> tuple[object, str]:
    """Load the model a --model option names, with a notice before a builtin is built and a
    clear error (typer.Exit) for an unknown builtin or a missing folder. Returns (model, name)."""
    from app.model_sources import load_model  # registers the builtin names first
    from app.quality.builtins import pending_build
    from app.registry.bootstrap import models_dir
    from app.settings import get_settings

    settings = get_settings()
    name = model or settings.base_model
    notice = pending_build(name, models_dir(settings))
    if notice:
        typer.echo(f"note: {notice}", err=True)
    try:
        source = resolve_model_option(name)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if not Path(source).is_dir() and (
        Path(source).is_absolute() or source.startswith(".") or source.count("/") != 1
    ):
        raise _fail(f"model folder not found: {source}")
    try:
        loaded = load_model(source, device=settings.device, max_pixels=settings.max_pixels)
    except (OSError, ValueError) as exc:
        hint = "" if Path(source).is_dir() else " (not a local folder; tried it as a hub id)"
        raise _fail(f"cannot load model {name}{hint}: {exc}") from exc
    return loaded, name


@app.command("eval")
def evaluate(
    images: str = typer.Option(..., help="Folder holding the images named in the CSV."),
    labels: str = typer.Option(..., help="CSV with columns filename,mos (higher = better)."),
    model: str | None = typer.Option(None, help=_model_help()),
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
        raise _fail(f"--mode must be one of {', '.join(SCORE_MODES)}")
    if not Path(images).is_dir():
        raise _fail(f"images folder not found: {images}")
    try:
        out_path = check_suffix(out) if out else None
        rows, skipped = read_labels(labels, images)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    rows = subset(rows, limit, seed)
    if not rows:
        raise _fail(f"{labels} lists no usable row")
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
        raise _fail(f"only {report.n} image(s) could be scored; no correlation to report", 1)
    dataset = Path(labels).resolve().parent.name or Path(images).resolve().name
    title = f"{name} on {dataset} ({Path(labels).name})"
    typer.echo(f"plot: {scatter_plot(report, plot, title=title)}")


def _default_server() -> str:
    from app.settings import Settings

    fields = Settings.model_fields
    return f"http://{fields['host'].default}:{fields['port'].default}"


@app.command()
def score(
    paths: list[str] = typer.Argument(..., help="Image files and folders (searched recursively)."),
    server: str | None = typer.Option(
        None, help="Score through this running server (e.g. http://127.0.0.1:8000)."
    ),
    model: str | None = typer.Option(
        None, help="Score in this process, no server: " + _model_help()
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
        raise _fail("give --server or --model, not both")
    if mode not in SCORE_MODES:
        raise _fail(f"--mode must be one of {', '.join(SCORE_MODES)}")
    try:
        out_path = check_suffix(out) if out else None
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    files, missing = find_images(paths)
    if not files:
        raise _fail("no image files found in " + ", ".join(paths))
    with tqdm(total=len(files), desc="scoring", unit="img") as bar:
        if server:
            with Client(server, token=token) as api:
                try:
                    outcome = score_with_server(
                        api, files, mode=mode, samples=samples, batch_size=batch_size,
                        on_progress=bar.update,
                    )  # fmt: skip
                except ApiError as exc:
                    raise _fail(f"{exc.code} ({exc.status}): {exc.detail}", 1) from exc
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
        raise _fail("no image could be scored", 1)


@app.command()
def upload(
    folder: list[str] = typer.Argument(..., help="Folders, image files and .zip archives."),
    server: str = typer.Option(_default_server(), help="URL of the running server."),
    train_opt_out: bool = typer.Option(False, help="Store the images but never train on them."),
    token: str | None = typer.Option(
        None, envvar="EVOQ_TOKEN", help="Bearer token (the write token when the server sets one)."
    ),
) -> None:
    """Send images to the corpus, in as many requests as the server's upload limits need."""
    from tqdm import tqdm

    from app.client import ApiError, Client, image_files

    for item in folder:
        if not Path(item).exists():
            raise _fail(f"no such file or folder: {item}")
    total = sum(1 for _ in image_files(folder))
    if not total:
        raise _fail("no image or .zip files found in " + ", ".join(folder))
    with (
        Client(server, token=token) as api,
        tqdm(total=total, desc="uploading", unit="file") as bar,
    ):
        try:
            result = api.upload(
                folder, train_opt_out=train_opt_out, on_batch=lambda n, _r: bar.update(n)
            )
        except ApiError as exc:
            raise _fail(f"{exc.code} ({exc.status}): {exc.detail}", 1) from exc
    for item in result.results:
        if item.status == "rejected":
            typer.echo(f"rejected {item.filename}: {item.reason}: {item.detail}", err=True)
    typer.echo(
        f"stored {result.stored}, duplicates {result.duplicates}, rejected {result.rejected}"
    )
    if result.rejected and not (result.stored or result.duplicates):
        raise typer.Exit(1)


@app.command()
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


def main() -> None:
    """Entry point of the `evoq` console script."""
    app()


if __name__ == "__main__":
    main()
