"""The production stack for integration tests: an API server process and a Celery worker
process on Postgres and Redis, with helpers to start rounds and wait on their state."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.badinputs import image_bytes
from tests.support.services import (
    evoq_argv,
    free_port,
    production_env,
    start_process,
    stop,
    tail,
    wait_http,
)

TOKEN = "pipeline-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL_STATUSES = ("promoted", "rejected", "failed", "cancelled", "awaiting_approval")
# Small enough for a CPU; the gate is loosened because a random tiny model neither parses
# sampled scores nor ranks well: these tests are about the pipeline, not about learning.
SMALL_ROUND = {
    "pairs": 16,
    "votes": 4,
    "vote_mode": "logits",
    "samples": 4,
    "max_steps": 2,
    "pairs_per_step": 2,
    "learning_rate": 1e-3,
    "format_reward_weight": 1.0,
    "eval_images": 4,
    "eval_samples": 2,
    "chunk_size": 4,
    "accuracy_margin": 1.0,
    "min_parse_rate": 0.0,
    "min_score_std": 0.0,
    # A 16-pair round holds out one or two pairs: the pipeline is under test, not the gate's
    # statistics (the gate's own tests cover min_holdout_pairs).
    "min_holdout_pairs": 1,
    "policy": "auto",
}


def _count(path: Path, needle: str) -> int:
    try:
        return path.read_text(errors="replace").count(needle)
    except FileNotFoundError:
        return 0


def corpus_files(n: int, offset: int = 0) -> list:
    """`n` distinct small PNGs as multipart `files` parts."""
    return [
        ("files", (f"img{i}.png", image_bytes("PNG", (40, 40), seed=1000 + i), "image/png"))
        for i in range(offset, offset + n)
    ]


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    data_dir: Path
    logs: Path
    server: subprocess.Popen
    worker: subprocess.Popen | None = None
    worker_module: str | None = None  # run `python -m this` instead of `evoq worker`
    extra: dict = field(default_factory=dict)

    def start_worker(self) -> None:
        """Start the worker and wait until it consumes (its "ready." log line)."""
        argv = evoq_argv("worker", "--queues", "default,gpu", "--pool", "solo", "--beat")
        if self.worker_module is not None:
            argv = [argv[0], "-m", self.worker_module]
        log = self.logs / "worker.log"
        readies = _count(log, " ready.")
        self.worker = start_process(argv, self.env, log)
        deadline = time.monotonic() + 180
        while _count(log, " ready.") <= readies:
            if self.worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker did not start:\n{tail(log)}")
            time.sleep(0.2)

    def kill_worker(self) -> None:
        """SIGKILL the worker: no cleanup, no acknowledgement, as when a machine dies."""
        if self.worker is not None:
            stop(self.worker, signal.SIGKILL)

    def round(self, round_id: int) -> dict:
        response = httpx.get(f"{self.url}/v1/admin/rounds/{round_id}", headers=AUTH, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def start_round(self, config: dict) -> int:
        response = httpx.post(
            f"{self.url}/v1/admin/rounds", json={"config": config}, headers=AUTH, timeout=30
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def wait_round(
        self, round_id: int, until: Callable[[dict], bool], timeout: float = 300, every=0.2
    ) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            body = self.round(round_id)
            if until(body):
                return body
            time.sleep(every)
        pytest.fail(f"round {round_id} stuck: {body}\n{tail(self.logs / 'worker.log', 60)}")

    def upload(self, n: int, offset: int = 0) -> dict:
        response = httpx.post(
            f"{self.url}/v1/corpus/images", files=corpus_files(n, offset), timeout=60
        )
        assert response.status_code == 200, response.text
        return response.json()

    def score_version(self) -> int:
        files = [("files", ("x.png", image_bytes("PNG", (32, 32), seed=5), "image/png"))]
        response = httpx.post(f"{self.url}/v1/score", files=files, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()["results"][0]["model_version"]


def stack_env(root: Path, port: int, database_url: str, broker_url: str, **extra: str) -> dict:
    """The environment of both processes: fast heartbeats and housekeeping for tests."""
    fast = {
        "EVOQ_ROUND_HEARTBEAT_SECONDS": "1",
        "EVOQ_ROUND_STALE_SECONDS": "8",
        "EVOQ_HOUSEKEEPING_SECONDS": "2",
        "EVOQ_ACTIVATION_POLL_SECONDS": "0.5",
        # The API's default placement: promotions and rollbacks swap between model processes.
        "EVOQ_SCORING_PROCESS": "true",
    }
    return production_env(
        db_url=database_url,
        broker_url=broker_url,
        data_dir=root / "data",
        port=port,
        admin_token=TOKEN,
        **{**fast, **extra},
    )


@contextmanager
def production_stack(
    root: Path,
    database_url: str,
    broker_url: str,
    *,
    worker: bool = True,
    worker_module: str | None = None,
    **extra: str,
) -> Iterator[Stack]:
    """An API server (ready) and, unless `worker=False`, a worker (`python -m worker_module`
    if given); both stopped afterwards."""
    port = free_port()
    env = stack_env(root, port, database_url, broker_url, **extra)
    server = start_process(evoq_argv("serve"), env, root / "server.log")
    url = f"http://127.0.0.1:{port}"
    stack = Stack(url, env, root / "data", root, server, worker_module=worker_module)
    try:
        wait_http(f"{url}/readyz", timeout=240, proc=server)
        if worker:
            stack.start_worker()
        yield stack
    finally:
        if stack.worker is not None:
            stop(stack.worker)
        stop(server)
        print("--- server log ---\n" + tail(root / "server.log", 40))
        print("--- worker log ---\n" + tail(root / "worker.log", 80))
