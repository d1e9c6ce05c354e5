"""Voting fans out over two real worker processes (Postgres, Redis, production mode), a worker
killed mid-chunk costs only that chunk (housekeeping redelivers it and it is counted once), and
the train stage runs GRPO in two processes (EVOQ_TRAIN_PROCESSES=2, gloo)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.round_stack import AUTH, RUNNING, RoundStack, round_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Many small chunks so both workers get several; sampled votes so a chunk lasts long enough to
# be killed in the middle of it. The random tiny model's sampled votes rarely parse, so training
# may find no labelled pair and fail: these tests are about voting and stop when it ends.
# pairs_per_step is 2 because a round is refused unless it is a multiple of EVOQ_TRAIN_PROCESSES.
ROUND = {
    "pairs": 24,
    "votes": 3,
    "vote_mode": "sampled",
    "samples": 2,
    "max_steps": 1,
    "pairs_per_step": 2,
    "chunk_size": 2,
    "max_completion_length": 4,
    "eval_images": 2,
    "eval_samples": 1,
    "accuracy_margin": 1.0,
    "min_parse_rate": 0.0,
    "min_score_std": 0.0,
    "min_holdout_pairs": 1,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[RoundStack]:
    root = tmp_path_factory.mktemp("fanout")
    with round_stack(
        root,
        redis_db=5,
        EVOQ_ROUND_HEARTBEAT_SECONDS="1",
        EVOQ_ROUND_STALE_SECONDS="10",
        EVOQ_HOUSEKEEPING_SECONDS="2",
        EVOQ_TRAIN_PROCESSES="2",
    ) as s:
        s.start_worker("w1")
        s.start_worker("w2", beat=True)
        s.wait_ready("w1")
        s.wait_ready("w2")  # or w1 may vote every chunk before w2 consumes
        assert s.upload(16) == 16
        yield s


@pytest.fixture(autouse=True)
def both_workers_and_no_round(stack: RoundStack) -> None:
    """Each test starts with w1 and w2 consuming and no round running, whatever ran before it
    (the kill test leaves w1 dead; a failed test may leave its round running)."""
    if "w1" not in stack.workers:
        # wait_ready would see the killed w1's "ready." line in the same log: count the new one.
        readies = len(_ready_lines(stack))
        stack.start_worker("w1")
        deadline = time.monotonic() + 180
        while len(_ready_lines(stack)) <= readies:
            assert time.monotonic() < deadline, "w1 did not start again"
            time.sleep(0.2)
    for body in httpx.get(f"{stack.url}/v1/admin/rounds", headers=AUTH, timeout=30).json()["items"]:
        if body["status"] in RUNNING:
            stack.cancel(body["id"])


def _ready_lines(stack: RoundStack) -> list[str]:
    msgs = (r.get("msg", "") for r in stack.records("w1"))
    return [m for m in msgs if m.startswith("w1@") and m.endswith(" ready.")]


def _voted_chunks(stack: RoundStack, worker: str, round_id: int) -> set[int]:
    return {e["chunk"] for e in stack.events(worker, "chunk voted", round_id) if e["pairs"]}


def _voting_ended(stack: RoundStack, round_id: int) -> dict:
    body = stack.wait_round(round_id, lambda b: b["status"] not in ("pending", "voting"))
    error = body["error"] or ""
    assert "vote_chunk" not in error and "worker lost" not in error, body
    return body


def _assert_counted_once(stack: RoundStack, round_id: int, config: dict = ROUND) -> None:
    pairs = stack.pairs(round_id)
    assert len(pairs) == config["pairs"]
    for p in pairs:
        assert p["voted_at"] is not None, p
        assert p["votes_a"] + p["votes_b"] + p["invalid"] == config["votes"], p


# Chunks long enough (6 pairs x 32 votes) that the kill, sent when w1 logs "chunk started",
# lands before the chunk's votes are written: with ROUND's 2 x 3 votes a warm worker sometimes
# finished the chunk first, and voting then ended without a redelivery.
KILL_ROUND = {**ROUND, "votes": 32, "chunk_size": 6}


def test_both_workers_vote_chunks_of_one_round(stack) -> None:
    round_id = stack.start_round({**ROUND, "seed": 1})
    _voting_ended(stack, round_id)
    by_w1, by_w2 = _voted_chunks(stack, "w1", round_id), _voted_chunks(stack, "w2", round_id)
    assert by_w1 and by_w2, (by_w1, by_w2)
    assert by_w1 | by_w2 == set(range(ROUND["pairs"] // ROUND["chunk_size"]))
    _assert_counted_once(stack, round_id)
    stack.cancel(round_id)


def test_a_worker_killed_mid_chunk_loses_only_that_chunk(stack) -> None:
    round_id = stack.start_round({**KILL_ROUND, "seed": 2})
    deadline = time.monotonic() + 240
    while not (started := stack.events("w1", "chunk started", round_id)):
        assert time.monotonic() < deadline, "w1 never started a chunk"
        time.sleep(0.05)
    stack.stop_worker("w1", signal.SIGKILL)
    lost = started[0]["chunk"]
    assert lost not in _voted_chunks(stack, "w1", round_id)  # killed before it finished

    body = _voting_ended(stack, round_id)
    assert body["progress"]["chunk_redeliveries"] >= 1
    assert lost in _voted_chunks(stack, "w2", round_id)
    _assert_counted_once(stack, round_id, KILL_ROUND)
    stack.cancel(round_id)


def test_a_round_trains_in_two_processes_and_registers_its_candidate(stack) -> None:
    # Logits votes always give labels; 2 pairs per step = one whole pair per training process.
    config = {**ROUND, "vote_mode": "logits", "seed": 3}
    round_id = stack.start_round(config)
    done = stack.wait_round(round_id, lambda b: b["finished_at"] is not None, timeout=600)
    assert done["status"] in ("promoted", "rejected"), done
    assert done["progress"]["train_step"] == done["progress"]["train_max_steps"] == 1
    assert done["candidate_version_id"] is not None
    assert done["progress"]["train"]["steps"] == 1
