"""Start a Celery worker (and optionally beat) for the configured broker."""

from __future__ import annotations

import os


def worker_argv(
    queues: list[str],
    pool: str,
    concurrency: int,
    beat: bool,
    loglevel: str = "INFO",
    name: str | None = None,
) -> list[str]:
    """The `celery worker` arguments for these options."""
    argv = [
        "worker",
        f"--queues={','.join(queues)}",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    if beat:
        argv.append("--beat")
    if name:
        # Several workers on one host need distinct node names (%h: the host name).
        argv.append(f"--hostname={name}@%h")
    return argv


def run_worker(
    queues: list[str], pool: str, concurrency: int, beat: bool, name: str | None = None
) -> None:
    """Run a worker in this process until it is stopped (SIGTERM: warm shutdown)."""
    # On small machines torch's default thread count thrashes against other processes.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from app.logs import configure_logging
    from app.settings import get_settings
    from workers.celery_app import celery_app

    settings = get_settings()
    configure_logging(settings.log_level)
    celery_app.worker_main(worker_argv(queues, pool, concurrency, beat, settings.log_level, name))
