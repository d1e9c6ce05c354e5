"""Celery task wiring: the round stages (workers/stages/) as tasks, housekeeping, ping.

Every stage reads its state from the database and checks the round's status before acting, so
a redelivered or repeated task does nothing twice; the round's heartbeat, refreshed while a
stage runs, lets housekeeping fail rounds whose worker died. Task names are the public contract
(the beat schedule, the task routes and `enqueue_round` use them).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from celery.signals import worker_ready

from workers.celery_app import celery_app
from workers.enqueue import enqueue_round, send
from workers.housekeeping import housekeep
from workers.stages import NextTasks
from workers.stages.calibrate import calibrate as calibrate_stage
from workers.stages.evaluate import evaluate as evaluate_stage
from workers.stages.gate import gate as gate_stage
from workers.stages.prepare import prepare as prepare_stage
from workers.stages.refresh import refresh as refresh_stage
from workers.stages.train import train as train_stage
from workers.stages.vote import vote as vote_stage
from workers.state import fail

log = logging.getLogger("evoq.pipeline")


@celery_app.task(name="evoq.ping")
def ping(payload: str = "pong") -> dict:
    """Round-trip check: echoes the payload with the worker's host and pid."""
    return {"payload": payload, "host": socket.gethostname(), "pid": os.getpid()}


def round_task(name: str, stage: Callable[..., NextTasks]) -> Any:
    """A pipeline task running `stage`: queues what it returns; any exception fails the round
    (with its message) and cleans up."""

    @functools.wraps(stage)
    def run(round_id: int, *args: Any) -> None:
        try:
            send(stage(round_id, *args))
        except Exception as exc:
            log.exception("round task failed", extra={"round": round_id, "task": name})
            fail(round_id, f"{name}: {type(exc).__name__}: {exc}")
            raise

    return celery_app.task(name=name, acks_late=True)(run)


prepare = round_task("evoq.rounds.prepare", prepare_stage)
refresh = round_task("evoq.rounds.refresh", refresh_stage)
vote = round_task("evoq.rounds.vote_chunk", vote_stage)
train = round_task("evoq.rounds.train", train_stage)
evaluate = round_task("evoq.rounds.evaluate", evaluate_stage)
calibrate = round_task("evoq.rounds.calibrate", calibrate_stage)
gate = round_task("evoq.rounds.gate", gate_stage)


@celery_app.task(name="evoq.rounds.housekeeping")
def housekeeping() -> dict[str, Any]:
    """Redeliver lost vote chunks, fail rounds whose worker died, start a continuous round."""
    result = housekeep()
    send(result["next"])
    if result["started"] is not None:
        enqueue_round(result["started"])
    return result


@worker_ready.connect
def _housekeeping_at_start(**_kwargs: Any) -> None:
    # A restarted worker notices rounds its predecessor left behind without waiting for beat.
    with contextlib.suppress(Exception):
        housekeeping.delay()
