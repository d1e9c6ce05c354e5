"""Real `evoq serve` processes (tiny built-in model, SQLite, no worker) for the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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

ADMIN_TOKEN = "e2e-admin-token"


@dataclass
class Server:
    url: str
    data_dir: Path
    log: Path


@contextmanager
def running_server(root: Path, **env: str) -> Iterator[Server]:
    """An `evoq serve` process with extra EVOQ_* settings, stopped (cleanly) afterwards."""
    port = free_port()
    log = root / "server.log"
    settings = {"EVOQ_DATA_DIR": str(root / "data"), "EVOQ_PORT": str(port)}
    proc = start_process(
        evoq_argv("serve"), base_env(**{"EVOQ_EMBEDDED_WORKER": "false", **settings, **env}), log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", timeout=240, proc=proc)
    except Exception:
        stop(proc)
        pytest.fail(f"server did not become ready:\n{tail(log)}")
    try:
        yield Server(url, root / "data", log)
    finally:
        assert stop(proc) == 0, tail(log)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("api"),
        EVOQ_ADMIN_TOKEN=ADMIN_TOKEN,
        EVOQ_BATCH_MAX_WAIT_MS="50",
        EVOQ_SCORING_PROCESS="true",  # the default placement: the model in a child process
    ) as server:
        yield server
