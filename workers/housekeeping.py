"""Housekeeping: redeliver the chunks of a voting round whose worker died, fail other rounds
whose worker died, start a continuous round when one is due."""

from __future__ import annotations

from typing import Any

from app.db import session_scope
from app.rounds import service as rounds
from app.rounds.schemas import RoundConfigIn
from app.settings import get_settings
from workers.stages import NextTasks
from workers.stages.vote import redeliver_lost_chunks
from workers.state import remove_unregistered_checkpoint


def housekeep() -> dict[str, Any]:
    """One pass; returns the failed round ids, the id of a round it created (to enqueue) and
    the tasks to send (`next`: redelivered vote chunks)."""
    settings = get_settings()
    # A lost chunk costs a redelivery, not the round: voting is idempotent (absolute counts of
    # the pairs still unvoted), so a chunk voted twice is counted once.
    with session_scope() as db:
        claimed = rounds.claim_stale_voting(
            db=db,
            stale_after_s=settings.round_stale_seconds,
            max_redeliveries=settings.vote_redeliveries,
        )
    next_tasks: NextTasks = [
        task for round_id in claimed for task in redeliver_lost_chunks(round_id)
    ]
    with session_scope() as db:
        failed = rounds.reap_stale(
            db=db,
            stale_after_s=settings.round_stale_seconds,
            pending_after_s=settings.round_pending_timeout_seconds,
        )
    for round_id in failed:
        remove_unregistered_checkpoint(round_id)
    started = None
    with session_scope() as db:
        schedule = rounds.due_for_continuous_round(db=db)
        if schedule is not None:
            new_round = rounds.create(
                db=db,
                config=RoundConfigIn.model_validate(schedule.config),
                actor="scheduler",
                trigger="continuous",
            )
            started = new_round.id
    return {"failed": failed, "started": started, "next": next_tasks}
