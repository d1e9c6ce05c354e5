"""Faults at every stage of a round, on the production stack (Postgres, Redis, an API process,
a Celery worker process; the tiny model). One stack; the cases run in any order, each from the
base model (the last case promotes a version, which one fixture undoes).

A worker is SIGKILLed during voting, training, evaluation and while the checkpoint is being
written; the disk fills during the checkpoint write; a pending round's task is lost. Each time:
the round ends failed with a reason (voting resumes instead), no checkpoint (complete or partial) is left or registered,
the serving model is untouched, and the next round starts. Stage entry is detected from the
round's status and progress in the database, never from guessed sleeps.
Cost: ~65 s on an idle 2-core machine, up to ~4 min when it is loaded (4 worker restarts,
7 short rounds).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.services import REDIS_URL, fresh_postgres_database
from tests.support.stack import AUTH, FINAL_STATUSES, SMALL_ROUND, Stack, production_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_DB = f"{REDIS_URL}/11"
# Manual policy: a round that does get through never changes the serving model.
FAULT_ROUND = {**SMALL_ROUND, "policy": "manual"}
# Voting in many small chunks of sampled votes, so that a kill lands between chunks.
SLOW_VOTING = {**FAULT_ROUND, "pairs": 24, "chunk_size": 2, "vote_mode": "sampled", "votes": 8}
LONG_TRAINING = {**FAULT_ROUND, "max_steps": 5000}
# Evaluation that samples many scores per image; training stays at two steps.
SLOW_EVALUATION = {**FAULT_ROUND, "eval_images": 12, "eval_samples": 64}
PENDING_TIMEOUT_S = 6


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tiny_answering_model_dir) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("faults")
    redis.Redis.from_url(REDIS_DB).flushdb()
    with (
        fresh_postgres_database() as db_url,
        production_stack(
            root,
            db_url,
            REDIS_DB,
            worker_module="tests.support.faulty_worker",  # publishes normally until told
            # Sampled votes must parse: the random tiny model answers a digit ~2/550 of the time.
            EVOQ_BASE_MODEL=str(tiny_answering_model_dir),
            EVOQ_TEST_FAULT_FILE=str(root / "fault"),
            EVOQ_ROUND_STALE_SECONDS="5",
            EVOQ_ROUND_PENDING_TIMEOUT_SECONDS=str(PENDING_TIMEOUT_S),
        ) as s,
    ):
        s.extra["fault"] = root / "fault"
        assert s.upload(12)["stored"] == 12
        s.extra["models"] = httpx.get(f"{s.url}/v1/models").json()
        yield s


@pytest.fixture(autouse=True)
def serving_the_base(stack: Stack) -> None:
    """Each case starts with a live worker, no fault armed and the base model serving: a promoted
    version would change what "untouched" means, and its checkpoint under models/rounds would be
    hidden by the full-disk case's tmpfs (the next round could not load its parent)."""
    stack.extra["fault"].write_text("")
    if stack.worker is None or stack.worker.poll() is not None:
        stack.start_worker()
    base = stack.extra["models"]["active_version"]
    active = httpx.get(f"{stack.url}/v1/models").json()["active_version"]
    if active != base:
        # The server may still be swapping to the promoted version: let it finish first, or it
        # would serve that version after we checked it was back on the base.
        _wait_serving(stack, active)
        activated = httpx.post(
            f"{stack.url}/v1/admin/models/{base}/activate", json={"reason": "base"}, headers=AUTH
        )
        assert activated.status_code == 200, activated.text
        _wait_serving(stack, base)


def _wait_serving(stack: Stack, version: int, timeout: float = 180) -> None:
    """Wait until the API server's loaded model is `version` (a swap takes ~40 s when loaded)."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{stack.url}/readyz").json().get("model", {}).get("version") != version:
        assert time.monotonic() < deadline, f"the server never swapped to version {version}"
        time.sleep(0.2)


def _rounds_dir(stack: Stack) -> Path:
    return stack.data_dir / "models" / "rounds"


def _leftovers(stack: Stack, round_id: int) -> list[str]:
    """The round's checkpoint folder, or its staging/trainer folders, if any is on disk."""
    folder = _rounds_dir(stack)
    name = f"round-{round_id}"
    found = folder.iterdir() if folder.exists() else []
    return [p.name for p in found if p.name == name or p.name.startswith(f".{name}.")]


def _assert_failed_cleanly(stack: Stack, round_id: int, *reason: str) -> dict:
    """The round failed with `reason` in its error, nothing was left or registered, the serving
    model is the one from before, and a new round is accepted."""
    failed = stack.wait_round(round_id, lambda b: b["status"] in FINAL_STATUSES, timeout=180)
    assert failed["status"] == "failed", failed
    for part in reason:
        assert part in failed["error"], failed["error"]
    assert failed["candidate_version_id"] is None
    # Housekeeping removes the folders right after it commits the failure.
    deadline = time.monotonic() + 60
    while _leftovers(stack, round_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _leftovers(stack, round_id) == []
    _assert_serving_untouched(stack, round_id)
    return failed


def _assert_serving_untouched(stack: Stack, round_id: int) -> None:
    active = stack.extra["models"]["active_version"]
    after = httpx.get(f"{stack.url}/v1/models").json()
    assert after["active_version"] == active
    assert not [
        v for v in after["versions"] if v["round_id"] == round_id and v["status"] == "active"
    ]
    assert stack.score_version() == active


def _kill_and_restart(stack: Stack) -> None:
    stack.kill_worker()
    stack.start_worker()  # its housekeeping notices the dead worker's stale heartbeat


def test_kill_during_voting_resumes_the_lost_chunk(stack: Stack) -> None:
    round_id = stack.start_round(SLOW_VOTING)
    during = stack.wait_round(
        round_id,
        lambda b: b["status"] == "voting" and b["progress"].get("pairs_voted", 0) >= 2,
    )
    assert during["progress"]["pairs_voted"] < during["progress"]["pairs_total"]
    _kill_and_restart(stack)
    # The chunk being voted died with the worker (its task is never redelivered); once the
    # heartbeat is stale, housekeeping queues the unvoted chunks again and voting completes.
    done = stack.wait_round(round_id, lambda b: b["status"] in FINAL_STATUSES, timeout=180)
    assert done["status"] in ("awaiting_approval", "rejected"), done
    assert done["progress"]["pairs_voted"] == done["progress"]["pairs_total"]
    assert done["progress"].get("chunk_redeliveries", 0) <= 1
    _assert_serving_untouched(stack, round_id)


def test_kill_during_training(stack: Stack) -> None:
    round_id = stack.start_round({**LONG_TRAINING, "seed": 1})
    stack.wait_round(round_id, lambda b: b["progress"].get("train_step", 0) >= 1)
    _kill_and_restart(stack)
    _assert_failed_cleanly(stack, round_id, "worker lost", "training")


def test_kill_during_evaluation(stack: Stack) -> None:
    round_id = stack.start_round({**SLOW_EVALUATION, "seed": 2})
    stack.wait_round(round_id, lambda b: b["status"] == "evaluating", every=0.05)
    _kill_and_restart(stack)
    failed = _assert_failed_cleanly(stack, round_id, "worker lost", "evaluating")
    assert failed["progress"]["checkpoint"]  # the written checkpoint was removed, unregistered


def test_kill_while_the_checkpoint_is_written(stack: Stack) -> None:
    fault: Path = stack.extra["fault"]
    fault.write_text("hang")
    writing = Path(f"{fault}.writing")
    try:
        round_id = stack.start_round({**FAULT_ROUND, "seed": 3})
        stack.wait_round(round_id, lambda _b: writing.exists())
        staging = Path(writing.read_text())
        assert staging.is_dir() and any(staging.glob("*.safetensors"))  # weights, unpublished
    finally:
        fault.write_text("")
    _kill_and_restart(stack)
    _assert_failed_cleanly(stack, round_id, "worker lost", "training")
    assert not staging.exists()


def _mount_small_tmpfs(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True
    )
    return mounted.returncode == 0


def test_a_full_disk_during_the_checkpoint_write(stack: Stack) -> None:
    """A 256 KiB tmpfs under the checkpoints folder (the tiny model's weights are ~1.4 MB);
    where mounting is not allowed, the faulty worker fails the write with ENOSPC instead."""
    folder = _rounds_dir(stack)
    mounted = _mount_small_tmpfs(folder)
    if not mounted:
        stack.extra["fault"].write_text("enospc")
    try:
        round_id = stack.start_round({**FAULT_ROUND, "seed": 4})
        _assert_failed_cleanly(stack, round_id, "No space left on device")
        assert not any(folder.iterdir())
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)
        stack.extra["fault"].write_text("")
    print(f"full disk: {'tmpfs' if mounted else 'injected ENOSPC'}")


def test_a_pending_round_whose_task_was_lost_fails_after_the_timeout(stack: Stack) -> None:
    stack.kill_worker()
    round_id = stack.start_round({**FAULT_ROUND, "seed": 5})
    redis.Redis.from_url(REDIS_DB).delete("default")  # the broker lost the queued task
    stack.start_worker()
    _assert_failed_cleanly(stack, round_id, "never picked up")


def test_after_all_that_a_round_runs_to_its_end(stack: Stack) -> None:
    round_id = stack.start_round({**SMALL_ROUND, "seed": 6})
    done = stack.wait_round(round_id, lambda b: b["status"] in FINAL_STATUSES, timeout=300)
    assert done["status"] in ("promoted", "rejected"), done
    assert done["candidate_version_id"] is not None
