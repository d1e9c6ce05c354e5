"""Real Postgres, Redis, Celery worker and API server processes for integration and e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

PG_ADMIN_DSN = os.environ.get("EVOQ_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("EVOQ_TEST_REDIS_URL", "redis://127.0.0.1:6379")
ROOT = Path(__file__).resolve().parents[2]


def sqlalchemy_url(dsn: str) -> str:
    """The psycopg3 SQLAlchemy URL for a libpq DSN."""
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty Postgres database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"evoq_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield sqlalchemy_url(f"{base}/{name}")
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**overrides: str) -> dict[str, str]:
    """The environment for child processes: EVOQ_* cleared, one thread per process, and the
    tiny random model (seconds to build) unless a test names another."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOQ_")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    env.update(EVOQ_BASE_MODEL="builtin:tiny")
    # The model process (the default) costs each server start ~3.5 s; the tests where the
    # model runs matters ask for it (tests/e2e/test_api.py, test_score_scale.py, the embedded
    # default in test_server_lifecycle.py, the production stack of tests/support/stack.py,
    # tests/scoring/test_model_process.py).
    env.update(EVOQ_SCORING_PROCESS="false")
    env.update(overrides)
    return env


def production_env(
    *, db_url: str, broker_url: str, data_dir: Path, port: int, admin_token: str, **overrides: str
) -> dict[str, str]:
    """`base_env` for a production-mode stack: Postgres, Redis, no embedded worker."""
    return base_env(
        EVOQ_DATABASE_URL=db_url,
        EVOQ_BROKER_URL=broker_url,
        EVOQ_DATA_DIR=str(data_dir),
        EVOQ_PORT=str(port),
        EVOQ_ADMIN_TOKEN=admin_token,
        EVOQ_EMBEDDED_WORKER="false",
        **overrides,
    )


def start_process(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start a child process with stdout/stderr going to `log_path`."""
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
    """Send `sig` and wait; SIGKILL after `timeout`. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def evoq_argv(*args: str) -> list[str]:
    """argv running the `evoq` command with this interpreter."""
    return [sys.executable, "-m", "app.cli", *args]


def wait_http(url: str, *, status: int = 200, timeout: float = 180.0, proc=None) -> httpx.Response:
    """Poll `url` until it answers `status`; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == status:
                return response
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer {status} within {timeout}s (last: {last})")


def tail(path: Path, n: int = 60) -> str:
    """The last `n` lines of a log file, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return "(no log)"
