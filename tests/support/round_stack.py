"""A production-mode stack for round tests and benchmarks: Postgres, Redis, `evoq serve` and any
number of named `evoq worker` processes, with helpers to drive rounds through the admin API."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from tests.badinputs import image_bytes
from tests.support.services import (
    REDIS_URL,
    evoq_argv,
    free_port,
    fresh_postgres_database,
    production_env,
    start_process,
    stop,
    tail,
    wait_http,
)

TOKEN = "round-stack-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RUNNING = ("pending", "voting", "training", "evaluating")


@dataclass
class RoundStack:
    """A running server and workers sharing one fresh database and one Redis DB."""

    url: str
    env: dict[str, str]
    root: Path
    db_url: str
    server: subprocess.Popen
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def start_worker(self, name: str, *, beat: bool = False, **env: str) -> None:
        """Start `evoq worker --name NAME` on the default and gpu queues (solo pool)."""
        argv = evoq_argv("worker", "--queues", "default,gpu", "--pool", "solo", "--name", name)
        self.workers[name] = start_process(
            [*argv, *(["--beat"] if beat else [])], {**self.env, **env}, self.log(name)
        )

    def wait_ready(self, name: str, timeout: float = 180) -> None:
        """Wait until worker `name` consumes (Celery logs "NAME@host ready.")."""
        deadline = time.monotonic() + timeout
        while not any(
            line.startswith(f"{name}@") and line.endswith(" ready.")
            for line in (r.get("msg", "") for r in self.records(name))
        ):
            if self.workers[name].poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(f"worker {name} not ready:\n{tail(self.log(name), 30)}")
            time.sleep(0.2)

    def stop_worker(self, name: str, sig: int = signal.SIGTERM) -> None:
        stop(self.workers.pop(name), sig)

    def upload(self, n: int, offset: int = 0, size: int = 40) -> int:
        """Upload `n` distinct PNGs to the corpus; returns how many were stored."""
        files = [
            ("files", (f"img{i}.png", image_bytes("PNG", (size, size), seed=1000 + i), "image/png"))
            for i in range(offset, offset + n)
        ]
        response = httpx.post(f"{self.url}/v1/corpus/images", files=files, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()["stored"]

    def start_round(self, config: dict[str, Any]) -> int:
        response = httpx.post(
            f"{self.url}/v1/admin/rounds", json={"config": config}, headers=AUTH, timeout=30
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def round(self, round_id: int) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/admin/rounds/{round_id}", headers=AUTH, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_round(
        self, round_id: int, until: Callable[[dict], bool], timeout: float = 300
    ) -> dict[str, Any]:
        """Poll the round until `until(body)`; raise with the worker logs after `timeout`."""
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.round(round_id)
            if until(body):
                return body
            time.sleep(0.3)
        logs = "\n".join(f"--- {n} ---\n{tail(self.log(n), 30)}" for n in self.workers)
        raise TimeoutError(f"round {round_id} stuck: {body}\n{logs}")

    def cancel(self, round_id: int) -> None:
        httpx.post(f"{self.url}/v1/admin/rounds/{round_id}/cancel", headers=AUTH, timeout=30)
        self.wait_round(round_id, lambda b: b["status"] not in RUNNING, timeout=180)

    def records(self, name: str) -> list[dict[str, Any]]:
        """The JSON log records of worker `name` so far."""
        records = []
        for line in self.log(name).read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def events(self, name: str, msg: str, round_id: int | None = None) -> list[dict[str, Any]]:
        """The JSON log records of worker `name` with this message (and round)."""
        return [
            r
            for r in self.records(name)
            if r.get("msg") == msg and round_id in (None, r.get("round"))
        ]

    def pairs(self, round_id: int) -> list[dict[str, Any]]:
        """The round's pair rows straight from Postgres."""
        dsn = self.db_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn) as conn:
            cursor = conn.execute(
                "SELECT idx, chunk, votes_a, votes_b, invalid, voted_at FROM pairs "
                "WHERE round_id = %s ORDER BY idx",
                (round_id,),
            )
            names = [c.name for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextmanager
def round_stack(root: Path, redis_db: int, **env: str) -> Iterator[RoundStack]:
    """Start the server (tiny model) against a fresh database; stop every process afterwards."""
    redis_url = f"{REDIS_URL}/{redis_db}"
    redis.Redis.from_url(redis_url).flushdb()
    with fresh_postgres_database() as db_url:
        port = free_port()
        stack_env = production_env(
            db_url=db_url,
            broker_url=redis_url,
            data_dir=root / "data",
            port=port,
            admin_token=TOKEN,
            **env,
        )
        server = start_process(evoq_argv("serve"), stack_env, root / "server.log")
        stack = RoundStack(f"http://127.0.0.1:{port}", stack_env, root, db_url, server)
        try:
            wait_http(f"{stack.url}/readyz", timeout=240, proc=server)
            yield stack
        finally:
            for name in list(stack.workers):
                stack.stop_worker(name)
            stop(server)
            redis.Redis.from_url(redis_url).flushdb()
