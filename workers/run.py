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


# Progress bars write carriage-return frames to stderr, which Celery redirects into the log as
# WARNING lines from `celery.redirected`; workers report progress in the round's row instead.
QUIET_PROGRESS_ENV = {
    "TQDM_DISABLE": "1",  # every tqdm bar (tqdm >= 4.66 reads TQDM_* defaults)
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub, and transformers through it
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets.map in TRL's data preparation
}


def quiet_progress_bars() -> None:
    """Turn progress bars off in this process and its children (training launches)."""
    for key, value in QUIET_PROGRESS_ENV.items():
        os.environ.setdefault(key, value)


def run_worker(
    queues: list[str], pool: str, concurrency: int, beat: bool, name: str | None = None
) -> None:
    """Run a worker in this process until it is stopped (SIGTERM: warm shutdown)."""
    # On small machines torch's default thread count thrashes against other processes.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    quiet_progress_bars()  # before any library reads these settings at import
    from app.logs import configure_logging
    from app.settings import get_settings
    from workers.celery_app import celery_app

    settings = get_settings()
    configure_logging(settings.log_level)
    celery_app.worker_main(worker_argv(queues, pool, concurrency, beat, settings.log_level, name))
