"""Stage 1b (rounds with `refresh_steps`): refresh the parent's comparison on the labels of the
round that produced it, then fan out the voting chunks; they vote with the refreshed model."""

from __future__ import annotations

import shutil
import time

from app.quality.refresh import refresh_comparisons, refresh_labels
from workers.heartbeat import heartbeat, touch
from workers.model_cache import release_models
from workers.stages import NextTasks
from workers.state import (
    load_round,
    parent_round,
    refresh_pending,
    refreshed_dir,
    round_image_loader,
    vote_tasks,
    votes,
)


def refresh(round_id: int) -> NextTasks:
    """Write the refreshed parent, or record why there is none; then queue every vote chunk."""
    loaded = load_round(round_id, "voting")
    if loaded is None:
        return []
    config, parent_path = loaded
    if refresh_pending(round_id, config):
        with heartbeat(round_id):
            touch(round_id, refresh=_refresh(round_id, config, parent_path))
    return vote_tasks(round_id, config.chunk_size)


def _refresh(round_id: int, config, parent_path: str) -> dict:
    source = parent_round(round_id)
    labels = refresh_labels(votes(source[0], holdout=False)) if source else []
    if not labels:
        why = "the parent came from no round" if source is None else "its round left no label"
        return {"steps": 0, "skipped": why}
    started = time.monotonic()
    release_models()  # the voting model of an earlier round, if this worker holds one
    out = refreshed_dir(round_id)
    shutil.rmtree(out, ignore_errors=True)  # a half-written one of a worker that died
    refresh_comparisons(
        parent_path,
        out,
        labels,
        round_image_loader(source[1], {k for v in labels for k in (v.a, v.b)}),
        config.refresh_config(),
        seed=config.seed,
    )
    return {
        "steps": config.refresh_steps,
        "pairs": len(labels),
        "from_round": source[0],
        "seconds": round(time.monotonic() - started, 3),
    }
