"""`evoq serve` as a real process: health, readiness, metrics, embedded worker, clean SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support.services import (
    base_env,
    evoq_argv,
    free_port,
    start_process,
    stop,
    tail,
    wait_http,
)

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    """Child processes of every thread of `pid` (the model process is started by a thread)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return children


def test_serve_embedded_default(tmp_path) -> None:
    port = free_port()
    env = base_env(EVOQ_DATA_DIR=str(tmp_path / "data"), EVOQ_PORT=str(port))
    del env["EVOQ_BASE_MODEL"]  # the real default: builtin:demo-evolved
    del env["EVOQ_SCORING_PROCESS"]  # and the real default placement: a model process
    log_path = tmp_path / "server.log"
    server = start_process(evoq_argv("serve"), env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_http(f"{base}/readyz", timeout=120, proc=server).json()
        assert ready["status"] == "ready" and ready["database"] == "ok"
        models = httpx.get(f"{base}/v1/models").json()
        # The evolved demo's lineage is in the registry: base -> round 1 -> round 2, active last.
        chain = [v["id"] for v in models["versions"]]
        assert len(chain) == 3 and models["active_version"] == chain[-1]
        assert models["versions"][-1]["lineage"] == chain[::-1]
        assert ready["model"]["version"] == chain[-1]
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert "evoq_http_requests_total" in metrics.text
        assert (tmp_path / "data" / "evoq.sqlite3").exists()
        worker_pids = _children(server.pid)
        assert worker_pids, "the embedded Celery worker child process is running"
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in worker_pids]
        assert any(b"app.scoring.model_process" in c for c in commands), "the model process"
    except Exception:
        print(tail(log_path))
        raise
    finally:
        code = stop(server, signal.SIGTERM)
    assert code == 0, tail(log_path)
    for pid in worker_pids:
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text(), "worker outlived the server"
    logs = log_path.read_text()
    assert '"msg": "server stopped"' in logs


def test_readyz_reports_an_unreachable_database(tmp_path) -> None:
    port = free_port()
    env = base_env(
        EVOQ_DATA_DIR=str(tmp_path / "data"),
        EVOQ_PORT=str(port),
        EVOQ_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none",
        EVOQ_EMBEDDED_WORKER="false",
    )
    log_path = tmp_path / "server.log"
    # The server refuses to start: it cannot migrate a database it cannot reach.
    server = start_process(evoq_argv("serve"), env, log_path)
    assert server.wait(120) != 0
    assert "OperationalError" in log_path.read_text()
