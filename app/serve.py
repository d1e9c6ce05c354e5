"""`evoq serve`: migrate, start the embedded worker when needed, run uvicorn, shut down cleanly."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import uvicorn

from app.db import migrate
from app.logs import configure_logging
from app.procutil import die_with_parent
from app.settings import Settings, get_settings

log = logging.getLogger("evoq.serve")


def start_embedded_worker(settings: Settings) -> subprocess.Popen | None:
    """Start a Celery worker child process on the embedded queue (with beat), or None if not wanted."""
    if not (settings.embedded_broker and settings.embedded_worker):
        return None
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    argv = [sys.executable, "-m", "app.cli", "worker", "--queues", "default,gpu", "--beat"]
    # The embedded worker must not outlive a server that was killed without a clean shutdown.
    parent = os.getpid()
    proc = subprocess.Popen(argv, env=env, preexec_fn=lambda: die_with_parent(parent))  # noqa: PLW1509
    log.info("embedded worker started", extra={"pid": proc.pid})
    return proc


def stop_process(proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """SIGTERM a child (Celery: warm shutdown), escalating to SIGKILL after `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _exit_cleanly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def run_server(host: str | None = None, port: int | None = None) -> None:
    """Serve the API until SIGTERM/SIGINT, then stop the embedded worker."""
    settings = get_settings()
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate()
    worker = start_embedded_worker(settings)
    from app.main import create_app

    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was installed before it: this one turns it into a normal exit so the worker is stopped.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    try:
        uvicorn.run(
            create_app(settings),
            host=host or settings.host,
            port=port or settings.port,
            log_config=None,
            timeout_graceful_shutdown=30,
        )
    finally:
        stop_process(worker)
        log.info("server stopped")
