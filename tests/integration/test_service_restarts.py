"""Broker and database restarts under load, on the production stack with a PRIVATE Redis and
a PRIVATE Postgres cluster (the machine's shared ones serve other runs and are never touched).

While clients score and a round votes, Redis is shut down (losing its queues) and started
again, then Postgres. Scoring answers 200 or 503 with Retry-After and never hangs; everything
recovers without restarting the API or the worker; /readyz reports each outage; the round
resumes the voting its lost tasks left undone (or fails with the reason), never stays
`voting`; no corpus row or file is lost. Cost: ~25 s idle, up to ~3 min on a loaded 2-core
machine (one stack, two restarts, two rounds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from tests.badinputs import image_bytes
from tests.support.private_services import PrivatePostgres, PrivateRedis, private_postgres
from tests.support.private_services import private_redis as start_private_redis
from tests.support.stack import AUTH, FINAL_STATUSES, SMALL_ROUND, Stack, production_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENT_TIMEOUT_S = 30.0  # a request still open after this counts as a hang
RECOVERY_BOUND_S = 60.0
VOTING = {**SMALL_ROUND, "pairs": 60, "chunk_size": 2, "vote_mode": "sampled", "votes": 8}


@dataclass
class Outcome:
    at: float
    status: int | None  # None: no answer within CLIENT_TIMEOUT_S, or the connection failed
    retry_after: str | None
    error: str | None = None


class ScoreLoad:
    """Two clients scoring in a loop, every answer recorded."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(2)]

    def _run(self, seed: int) -> None:
        files = [("files", ("s.png", image_bytes("PNG", (24, 24), seed=seed), "image/png"))]
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            while not self._stop.is_set():
                at = time.monotonic()
                try:
                    r = client.post(f"{self.url}/v1/score", files=files)
                    self.outcomes.append(Outcome(at, r.status_code, r.headers.get("retry-after")))
                except httpx.HTTPError as exc:
                    self.outcomes.append(Outcome(at, None, None, repr(exc)))

    def __enter__(self) -> ScoreLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def since(self, at: float) -> list[Outcome]:
        return [o for o in self.outcomes if o.at >= at]


@pytest.fixture(scope="module")
def services(
    tmp_path_factory, tiny_answering_model_dir
) -> Iterator[tuple[Stack, PrivateRedis, PrivatePostgres]]:
    root = tmp_path_factory.mktemp("restarts")
    with (
        start_private_redis(root) as broker,
        private_postgres() as database,
        production_stack(
            root,
            database.url,
            broker.url,
            EVOQ_ROUND_STALE_SECONDS="5",
            # Sampled votes must parse: the random tiny model answers a digit ~2/550 of the time.
            EVOQ_BASE_MODEL=str(tiny_answering_model_dir),
        ) as stack,
    ):
        assert stack.upload(12)["stored"] == 12
        yield stack, broker, database


def _readyz(stack: Stack) -> httpx.Response:
    return httpx.get(f"{stack.url}/readyz", timeout=CLIENT_TIMEOUT_S)


def _wait(predicate, what: str) -> float:  # noqa: ANN001
    """Poll `predicate` until true; the seconds it took (bounded)."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_BOUND_S:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {RECOVERY_BOUND_S}s")


def _scores_again(stack: Stack) -> bool:
    try:
        return stack.score_version() > 0
    except (AssertionError, httpx.HTTPError):
        return False


def _corpus(stack: Stack, database: PrivatePostgres) -> tuple[set[str], set[str]]:
    with psycopg.connect(database.dsn, connect_timeout=5) as conn:
        rows = {sha for (sha,) in conn.execute("SELECT sha256 FROM images")}
    store = stack.data_dir / "images"
    files = {p.name.split(".")[0] for p in store.rglob("*") if p.is_file()}
    return rows, files


def _assert_answers_were_clean(outcomes: list[Outcome]) -> None:
    assert outcomes, "no score request was made"
    for outcome in outcomes:
        assert outcome.status in (200, 503), outcome
        if outcome.status == 503:
            assert outcome.retry_after and int(outcome.retry_after) > 0, outcome


def test_redis_then_postgres_restart_under_load(services) -> None:
    stack, broker, database = services
    rows_before, files_before = _corpus(stack, database)
    round_id = stack.start_round(VOTING)
    stack.wait_round(round_id, lambda b: b["progress"].get("pairs_voted", 0) >= 2)

    with ScoreLoad(stack.url) as load:
        # --- the broker goes away and comes back empty ----------------------------------
        broker.stop()
        down = _readyz(stack).json()
        assert down["broker"].startswith("unreachable"), down
        refused = httpx.post(
            f"{stack.url}/v1/admin/rounds", json={"config": SMALL_ROUND}, headers=AUTH, timeout=30
        )
        assert refused.status_code in (409, 503), refused.text  # never a hang or a 500
        assert refused.json()["error"] in ("round_running", "broker_unavailable")
        broker.start()
        _wait(lambda: _readyz(stack).json().get("broker") == "ok", "broker back in /readyz")

        # --- the database goes away and comes back ---------------------------------------
        marker = time.monotonic()
        database.stop()
        unready = _readyz(stack)
        assert unready.status_code == 503 and unready.json()["database"] == "unreachable"
        upload = httpx.post(
            f"{stack.url}/v1/corpus/images",
            files=[("files", ("late.png", image_bytes("PNG", (22, 22), seed=77), "image/png"))],
            timeout=CLIENT_TIMEOUT_S,
        )
        assert upload.status_code == 503, upload.text
        assert upload.json()["error"] == "database_unavailable" and upload.headers["retry-after"]
        models = httpx.get(f"{stack.url}/v1/models", timeout=CLIENT_TIMEOUT_S)
        assert models.status_code == 503 and models.json()["error"] == "database_unavailable"
        database.start()
        _wait(lambda: _readyz(stack).status_code == 200, "database back in /readyz")
        _wait(lambda: _scores_again(stack), "scoring after the restarts")
        during_database = load.since(marker)

    _assert_answers_were_clean(load.outcomes)
    assert during_database
    # The round does not stay voting: housekeeping queues the chunks Redis lost again (or a
    # chunk that hit the database outage failed it, with the reason).
    done = stack.wait_round(round_id, lambda b: b["status"] in FINAL_STATUSES, timeout=180)
    if done["status"] == "failed":
        assert "OperationalError" in done["error"] or "worker lost" in done["error"], done
    else:
        assert done["progress"]["pairs_voted"] == done["progress"]["pairs_total"], done
        assert done["progress"]["chunk_redeliveries"] >= 1, done
    # The service works as before: uploads are stored, a new round is accepted and runs.
    assert stack.upload(2, offset=50)["stored"] == 2
    rows, files = _corpus(stack, database)
    assert rows_before <= rows and files_before <= files and rows == files
    next_round = stack.start_round({**SMALL_ROUND, "policy": "manual", "seed": 9})
    after = stack.wait_round(next_round, lambda b: b["status"] in FINAL_STATUSES, timeout=180)
    assert after["status"] in ("awaiting_approval", "rejected"), after
