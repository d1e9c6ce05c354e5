"""The `evoq` command: serve, worker, migrate and the model/demo tools."""

from __future__ import annotations

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
    from app.quality.tiny import build_tiny_model

    typer.echo(str(build_tiny_model(path, vocab=vocab, seed=seed)))


def main() -> None:
    """Entry point of the `evoq` console script."""
    app()


if __name__ == "__main__":
    main()
