"""Stage 2: the parent model votes one chunk of pairs; the last chunk starts training."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime

from sqlalchemy import func, select

from app.db import session_scope
from app.quality.augment import parse_variant
from app.quality.pairs import Pair as ImagePair
from app.quality.voting import chunk_seed, vote_chunk
from app.rounds.models import Pair, Round
from app.timeutil import utcnow
from workers.heartbeat import heartbeat
from workers.model_cache import cached_model
from workers.stages import NextTasks
from workers.state import (
    load_round,
    refresh_pending,
    round_image_loader,
    rounds_advance,
    voting_model,
)

log = logging.getLogger("evoq.pipeline")


def vote(round_id: int, chunk: int) -> NextTasks:
    """Vote one chunk; the counts written are absolute, so a re-run never double-counts."""
    loaded = load_round(round_id, "voting")
    if loaded is None:
        return []
    config, parent_path = loaded
    if refresh_pending(round_id, config):  # the refresh task was lost: it goes first
        return [("evoq.rounds.refresh", [round_id])]
    model_path = voting_model(round_id, parent_path)
    with heartbeat(round_id):
        with session_scope() as db:
            rows = db.scalars(
                select(Pair)
                .where(Pair.round_id == round_id, Pair.chunk == chunk)
                .order_by(Pair.idx)
            ).all()
            todo = [
                (
                    p.id,
                    parse_variant(p.image_a, p.variant_a),
                    parse_variant(p.image_b, p.variant_b),
                    p.holdout,
                )
                for p in rows
                if p.voted_at is None
            ]
        started = time.monotonic()
        log.info(
            "chunk started",
            extra={
                "round": round_id,
                "chunk": chunk,
                "pairs": len(todo),
                "worker_pid": os.getpid(),
            },
        )
        if todo:
            pairs = [ImagePair(a, b, holdout) for _id, a, b, holdout in todo]
            load = round_image_loader(config, {k for p in pairs for k in (p.a, p.b)})
            results = vote_chunk(
                cached_model(model_path),
                pairs,
                load,
                config.vote_config(),
                chunk_seed(config.seed, chunk),
            )
            with session_scope() as db:
                now = utcnow()
                for (pair_id, *_), result in zip(todo, results, strict=True):
                    row = db.get(Pair, pair_id)
                    row.votes_a, row.votes_b = result.votes_a, result.votes_b
                    row.invalid, row.p_star, row.voted_at = result.invalid, result.p_star, now
        with session_scope() as db:
            # The row lock first: chunks finishing together (and housekeeping's redelivery
            # count) then update progress one after another, each counting the others' votes.
            found = db.get(Round, round_id, with_for_update=True)
            voted = db.scalar(
                select(func.count()).where(Pair.round_id == round_id, Pair.voted_at.is_not(None))
            )
            total = db.scalar(select(func.count()).where(Pair.round_id == round_id))
            found.progress = {**found.progress, "pairs_voted": voted}
    log.info(
        "chunk voted",
        extra={
            "round": round_id,
            "chunk": chunk,
            "pairs": len(todo),
            "seconds": round(time.monotonic() - started, 3),
            "worker_pid": os.getpid(),
        },
    )
    return _train_when_voted(round_id, voted, total)


def redeliver_lost_chunks(round_id: int) -> NextTasks:
    """The vote tasks of a voting round's chunks that still have unvoted pairs (their worker
    died mid-chunk), or the train task when none is left (it died before advancing)."""
    with session_scope() as db:
        if (found := db.get(Round, round_id)) is None or found.status != "voting":
            return []
        chunks = db.scalars(
            select(Pair.chunk)
            .where(Pair.round_id == round_id, Pair.voted_at.is_(None))
            .distinct()
            .order_by(Pair.chunk)
        ).all()
        total = db.scalar(select(func.count()).where(Pair.round_id == round_id)) or 0
    if chunks:
        log.warning("redelivering chunks", extra={"round": round_id, "chunks": list(chunks)})
        return [("evoq.rounds.vote_chunk", [round_id, chunk]) for chunk in chunks]
    return _train_when_voted(round_id, total, total)


def _train_when_voted(round_id: int, voted: int, total: int) -> NextTasks:
    # The status compare-and-set lets exactly one of the chunks finishing together start training.
    if voted == total and rounds_advance(round_id, "voting", "training"):
        _record_voting_time(round_id)
        return [("evoq.rounds.train", [round_id])]
    return []


def _record_voting_time(round_id: int) -> None:
    # Wall time of the whole stage across workers, for operators and bench_vote_scaling.py.
    with session_scope() as db:
        found = db.get(Round, round_id, with_for_update=True)
        started = found.progress.get("voting_started_at")
        if started is not None:
            seconds = (utcnow() - datetime.fromisoformat(started)).total_seconds()
            found.progress = {**found.progress, "voting_seconds": round(seconds, 3)}
