"""A real `evoq serve` process (tiny built-in model, SQLite, no worker) shared by the API tests."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def api_server(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("api")
    port = free_port()
    env = base_env(
        EVOQ_DATA_DIR=str(root / "data"),
        EVOQ_PORT=str(port),
        EVOQ_EMBEDDED_WORKER="false",
        EVOQ_ADMIN_TOKEN=ADMIN_TOKEN,
        EVOQ_BATCH_MAX_WAIT_MS="50",
    )
    log = root / "server.log"
    proc = start_process(evoq_argv("serve"), env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", timeout=240, proc=proc)
    except Exception:
        stop(proc)
        pytest.fail(f"server did not become ready:\n{tail(log)}")
    yield Server(url, root / "data", log)
    assert stop(proc) == 0, tail(log)
