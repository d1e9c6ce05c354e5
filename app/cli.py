"""The `evoq` command: serve, worker and migrate here; the model, scoring and planning tools
live in app/commands/ and are registered below."""

from __future__ import annotations

import typer

from app.commands import plan, scoring, tools, upload
from app.commands.options import load_model_option, resolve_model_option

__all__ = ["app", "load_model_option", "main", "resolve_model_option"]

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


# The rest in the order `evoq --help` has always listed them.
app.command("make-tiny-model")(tools.make_tiny_model)
app.command("make-synthetic")(tools.make_synthetic)
app.command()(tools.demo)
app.command("eval")(scoring.evaluate)
app.command()(scoring.score)
app.command()(upload.upload)
app.command()(plan.plan)


def main() -> None:
    """Entry point of the `evoq` console script."""
    app()


if __name__ == "__main__":
    main()
