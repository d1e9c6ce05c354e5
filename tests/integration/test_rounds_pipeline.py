"""The evolution pipeline end to end: real Postgres, Redis, a Celery worker process and a uvicorn
server process with the tiny model. The tests share one stack but run in any order: each starts
with no round running and reads the versions and rounds it builds on instead of assuming them."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from tests.badinputs import image_bytes
from tests.support.services import REDIS_URL, fresh_postgres_database, stop, tail
from tests.support.stack import AUTH, SMALL_ROUND, Stack, corpus_files, production_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LONG_TRAINING = {**SMALL_ROUND, "max_steps": 5000, "seed": 1}
RUNNING = ("pending", "voting", "training", "evaluating")
# The probe set the manual-policy test registers gates every later round; a round that must
# promote lets its probe SRCC fall any amount, whichever test ran first.
PROMOTING = {**SMALL_ROUND, "srcc_margin": 2.0}


@contextmanager
def pipeline_stack(root: Path, redis_db_number: int, **settings: str) -> Iterator[Stack]:
    """Postgres, a Redis DB of the caller's, an API server and a worker with `settings`."""
    redis_db = f"{REDIS_URL}/{redis_db_number}"
    redis.Redis.from_url(redis_db).flushdb()
    with (
        fresh_postgres_database() as db_url,
        production_stack(root, db_url, redis_db, **settings) as s,
    ):
        yield s


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with pipeline_stack(tmp_path_factory.mktemp("pipeline"), 10) as running:
        assert running.upload(12)["stored"] == 12  # every round needs a corpus
        yield running


@pytest.fixture(autouse=True)
def no_round_running(stack: Stack) -> None:
    """Whatever ran before (a failed test may leave its round running or the schedule on), the
    test starts with the schedule off and no round holding the running lock."""
    httpx.put(f"{stack.url}/v1/admin/schedule", json={"enabled": False}, headers=AUTH)
    for body in httpx.get(f"{stack.url}/v1/admin/rounds", headers=AUTH).json()["items"]:
        if body["status"] in RUNNING:
            httpx.post(f"{stack.url}/v1/admin/rounds/{body['id']}/cancel", headers=AUTH)
            _wait_round(stack, body["id"], lambda b: b["status"] not in RUNNING, timeout=180)


def _active(stack: Stack) -> dict:
    """The serving version's entry in /v1/models."""
    models = httpx.get(f"{stack.url}/v1/models").json()
    return next(v for v in models["versions"] if v["id"] == models["active_version"])


def _round(stack: Stack, round_id: int) -> dict:
    return stack.round(round_id)


def _wait_round(stack: Stack, round_id: int, until, timeout: float = 300) -> dict:
    return stack.wait_round(round_id, until, timeout, every=0.5)


def _score_version(stack: Stack) -> int:
    return stack.score_version()


def _files(n: int, offset: int = 0) -> list:
    return corpus_files(n, offset)


def _wait_serving(stack: Stack, version: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{stack.url}/readyz").json().get("model", {}).get("version") == version:
            return
        time.sleep(0.2)
    pytest.fail(f"server never swapped to version {version}: {tail(stack.logs / 'server.log')}")


def test_admin_endpoints_reject_missing_and_wrong_tokens(stack) -> None:
    body = {"config": SMALL_ROUND}
    missing = httpx.post(f"{stack.url}/v1/admin/rounds", json=body)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    wrong = httpx.post(
        f"{stack.url}/v1/admin/rounds", json=body, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 403 and wrong.json()["error"] == "forbidden"
    assert httpx.post(f"{stack.url}/v1/admin/rollback").status_code == 401
    assert httpx.get(f"{stack.url}/v1/admin/rounds", headers=AUTH).status_code == 200


def test_round_config_is_validated(stack) -> None:
    bad = httpx.post(f"{stack.url}/v1/admin/rounds", json={"config": {"votes": 0}}, headers=AUTH)
    assert bad.status_code == 422 and "votes" in bad.json()["detail"]
    unknown = httpx.post(f"{stack.url}/v1/admin/rounds", json={"config": {"vots": 3}}, headers=AUTH)
    assert unknown.status_code == 422
    smear = {"config": {"augment": {"variants": 2, "types": ["smear"]}}}
    bad_type = httpx.post(f"{stack.url}/v1/admin/rounds", json=smear, headers=AUTH)
    assert bad_type.status_code == 422 and "types" in bad_type.json()["detail"]


def test_a_round_promotes_a_new_version_and_the_api_swaps_without_failures(stack) -> None:
    base_version = _active(stack)
    base = base_version["id"]
    assert _score_version(stack) == base

    started = httpx.post(f"{stack.url}/v1/admin/rounds", json={"config": PROMOTING}, headers=AUTH)
    assert started.status_code == 201, started.text
    round_id = started.json()["id"]
    assert started.json()["status"] == "pending"
    second = httpx.post(f"{stack.url}/v1/admin/rounds", json={"config": SMALL_ROUND}, headers=AUTH)
    assert second.status_code == 409 and second.json()["error"] == "round_running"

    # Score continuously while the round finishes and the API swaps models.
    outcomes: list[tuple[int, int | None]] = []
    stop_load = threading.Event()

    def load() -> None:
        files = [("files", ("y.png", image_bytes("PNG", (30, 30), seed=9), "image/png"))]
        with httpx.Client(timeout=60) as client:
            while not stop_load.is_set():
                r = client.post(f"{stack.url}/v1/score", files=files)
                version = r.json()["results"][0]["model_version"] if r.status_code == 200 else None
                outcomes.append((r.status_code, version))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        done = _wait_round(
            stack,
            round_id,
            lambda b: b["status"] not in RUNNING,
        )
        assert done["status"] == "promoted", done
        assert done["progress"]["pairs_voted"] == done["progress"]["pairs_total"] == 16
        assert done["progress"]["voting_seconds"] > 0  # the stage timed across its workers
        assert done["progress"]["train_step"] == 2
        assert done["gate"]["passed"] is True and done["gate"]["checks"]
        candidate = done["candidate_version_id"]
        _wait_serving(stack, candidate)
        time.sleep(1.0)
    finally:
        stop_load.set()
        loader.join()
    assert outcomes and all(code == 200 for code, _ in outcomes), outcomes
    assert {v for _, v in outcomes} <= {base, candidate}
    assert outcomes[-1][1] == candidate

    models = httpx.get(f"{stack.url}/v1/models").json()
    assert models["active_version"] == candidate
    new = next(v for v in models["versions"] if v["id"] == candidate)
    assert new["parent_id"] == base and new["round_id"] == round_id
    assert new["lineage"] == [candidate, *base_version["lineage"]]
    assert new["metrics"]["train"]["steps"] == 2
    assert new["digest"].startswith("sha256:")
    assert _score_version(stack) == candidate

    rolled = httpx.post(f"{stack.url}/v1/admin/rollback", json={"reason": "test"}, headers=AUTH)
    assert rolled.status_code == 200 and rolled.json()["version_id"] == base
    _wait_serving(stack, base)
    assert _score_version(stack) == base
    history = httpx.get(f"{stack.url}/v1/models").json()["activations"]
    assert [a["version_id"] for a in history[:3]] == [base, candidate, base]
    assert history[0]["actor"] == "admin" and history[1]["actor"] == f"round-{round_id}"


def test_cancel_stops_training_and_cleans_up(stack) -> None:
    started = httpx.post(
        f"{stack.url}/v1/admin/rounds", json={"config": LONG_TRAINING}, headers=AUTH
    ).json()
    round_id = started["id"]
    _wait_round(stack, round_id, lambda b: b["progress"].get("train_step", 0) >= 1)
    cancelled = httpx.post(f"{stack.url}/v1/admin/rounds/{round_id}/cancel", headers=AUTH)
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True
    done = _wait_round(stack, round_id, lambda b: b["status"] == "cancelled", timeout=120)
    assert done["candidate_version_id"] is None
    assert not (stack.data_dir / "models" / "rounds" / f"round-{round_id}").exists()
    again = httpx.post(f"{stack.url}/v1/admin/rounds/{round_id}/cancel", headers=AUTH)
    assert again.status_code == 409


def test_a_killed_worker_fails_the_round_and_keeps_the_serving_model(stack) -> None:
    before = httpx.get(f"{stack.url}/v1/models").json()
    started = httpx.post(
        f"{stack.url}/v1/admin/rounds", json={"config": {**LONG_TRAINING, "seed": 2}}, headers=AUTH
    ).json()
    round_id = started["id"]
    _wait_round(stack, round_id, lambda b: b["progress"].get("train_step", 0) >= 1)
    stop(stack.worker, signal.SIGKILL)
    stack.start_worker()  # its housekeeping notices the dead worker's stale heartbeat
    failed = _wait_round(stack, round_id, lambda b: b["status"] == "failed", timeout=120)
    assert "worker lost" in failed["error"]
    after = httpx.get(f"{stack.url}/v1/models").json()
    assert after["active_version"] == before["active_version"]
    assert len(after["versions"]) == len(before["versions"])  # nothing half-written registered
    assert not (stack.data_dir / "models" / "rounds" / f"round-{round_id}").exists()
    assert _score_version(stack) == before["active_version"]


def test_manual_policy_waits_for_an_admin_and_a_probe_set_gates(stack) -> None:
    probe = [
        ("files", (f"p{i}.png", image_bytes("PNG", (36, 36), seed=500 + i), "image/png"))
        for i in range(4)
    ]
    labels = "filename,mos\n" + "".join(f"p{i}.png,{1 + i}\n" for i in range(4)) + "ghost.png,3\n"
    registered = httpx.post(
        f"{stack.url}/v1/admin/probe-sets",
        files=[*probe, ("labels", ("mos.csv", labels.encode(), "text/csv"))],
        data={"name": "probe-one"},
        headers=AUTH,
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["images"] == 4
    assert registered.json()["skipped"] == [
        {"filename": "ghost.png", "reason": "listed in the CSV but not uploaded"}
    ]
    # The round's parent is the base model (never from a round): nothing to refresh from, and
    # this seed's round leaves it unchanged (below). Another test may have promoted a version.
    if _active(stack)["round_id"] is not None:
        base = _active(stack)["lineage"][-1]  # the lineage ends at the base
        activated = httpx.post(
            f"{stack.url}/v1/admin/models/{base}/activate", json={"reason": "base"}, headers=AUTH
        )
        assert activated.status_code == 200, activated.text
        _wait_serving(stack, base)
    before = httpx.get(f"{stack.url}/v1/models").json()["active_version"]
    # Also the paper's round-2 pool: derived variants and same-reference pairs, never stored.
    augment = {"variants": 2, "types": ["darken", "noise"], "same_reference_fraction": 0.5}
    # This seed's round leaves the random model unchanged (measured: score change 0, answer KL
    # 0; its sampled scores parse 0% of the time, so the rewards carry no signal). The no-op
    # check (tests/rounds/test_gate_noop.py) is off here: the manual policy and the probe set
    # are under test.
    config = {
        **SMALL_ROUND, "policy": "manual", "srcc_margin": 2.0, "seed": 3, "augment": augment,
        "refresh_steps": 3, "min_score_change": 0.0, "min_answer_kl": 0.0,
    }  # fmt: skip
    images_before = httpx.get(f"{stack.url}/v1/corpus").json()
    round_id = httpx.post(
        f"{stack.url}/v1/admin/rounds", json={"config": config}, headers=AUTH
    ).json()["id"]
    done = _wait_round(stack, round_id, lambda b: b["finished_at"] is not None)
    assert done["status"] == "awaiting_approval", done
    assert done["progress"]["refresh"] == {"steps": 0, "skipped": "the parent came from no round"}
    checks = {c["name"]: c for c in done["gate"]["checks"]}
    assert "probe_srcc" in checks and checks["probe_srcc"]["passed"]
    assert done["gate"]["metrics"]["probe_set"] == "probe-one"
    with psycopg.connect(stack.env["EVOQ_DATABASE_URL"].replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "SELECT variant_a, variant_b, image_a = image_b, voted_at IS NOT NULL"
            " FROM pairs WHERE round_id = %s",
            (round_id,),
        ).fetchall()
    specs = {spec for a, b, _, _ in rows for spec in (a, b) if spec}
    assert specs and {s.rsplit("-", 1)[0] for s in specs} <= {"darken", "noise"}
    assert any(same for *_, same, _ in rows), "no pair of two versions of one image"
    assert all(voted for *_, voted in rows)
    assert httpx.get(f"{stack.url}/v1/corpus").json()["images"] == images_before["images"]
    candidate = done["candidate_version_id"]
    models = httpx.get(f"{stack.url}/v1/models").json()
    assert models["active_version"] == before
    assert next(v for v in models["versions"] if v["id"] == candidate)["status"] == "candidate"
    approved = httpx.post(
        f"{stack.url}/v1/admin/models/{candidate}/activate",
        json={"reason": "looks good"},
        headers=AUTH,
    )
    assert approved.status_code == 200
    assert _round(stack, round_id)["status"] == "promoted"
    _wait_serving(stack, candidate)


def test_continuous_mode_starts_a_round_when_enough_images_arrived(stack) -> None:
    # Its parent is the serving version, which a round produced: the round first refreshes
    # that parent's comparison on that round's labels. Alone, the test runs that round first.
    if _active(stack)["round_id"] is None:
        first = stack.start_round(PROMOTING)  # as in the promotion test
        promoted = _wait_round(stack, first, lambda b: b["finished_at"] is not None)
        assert promoted["status"] == "promoted", promoted
        _wait_serving(stack, promoted["candidate_version_id"])
    parent_round = _round(stack, _active(stack)["round_id"])
    known = {
        r["id"] for r in httpx.get(f"{stack.url}/v1/admin/rounds", headers=AUTH).json()["items"]
    }
    config = {**SMALL_ROUND, "refresh_steps": 3}
    schedule = {"enabled": True, "min_new_images": 3, "config": config}
    response = httpx.put(f"{stack.url}/v1/admin/schedule", json=schedule, headers=AUTH)
    assert response.status_code == 200 and response.json()["enabled"] is True
    httpx.post(f"{stack.url}/v1/corpus/images", files=_files(3, offset=100), timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rounds = httpx.get(f"{stack.url}/v1/admin/rounds", headers=AUTH).json()["items"]
        if rounds and rounds[0]["id"] not in known and rounds[0]["trigger"] == "continuous":
            break
        time.sleep(0.5)
    else:
        pytest.fail("continuous mode did not start a round")
    httpx.put(f"{stack.url}/v1/admin/schedule", json={**schedule, "enabled": False}, headers=AUTH)
    done = _wait_round(stack, rounds[0]["id"], lambda b: b["finished_at"] is not None)
    assert done["status"] in ("promoted", "rejected"), done
    assert done["parent_version_id"] == parent_round["candidate_version_id"]
    refresh = done["progress"]["refresh"]
    assert refresh["steps"] == 3 and refresh["from_round"] == parent_round["id"], refresh
    assert refresh["pairs"] > 0
    assert not list((stack.data_dir / "models" / "rounds").glob(".*refreshed*"))
