"""What every stage reads and writes of a round: status, config, checkpoint folder, votes, images."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection, Hashable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.corpus.models import Image
from app.db import session_scope
from app.quality.augment import Variant, parse_variant, reference_of, variant_loader
from app.quality.checkpoint import DIGEST_FILE
from app.quality.images import path_loader
from app.quality.voting import VoteResult, chunk_count
from app.registry import service as registry
from app.registry.bootstrap import models_dir
from app.rounds import service as rounds
from app.rounds.models import Pair, Round
from app.rounds.schemas import RoundConfigIn
from app.settings import get_settings


def checkpoint_dir(round_id: int) -> Path:
    """Where a round's candidate checkpoint is written (complete or absent, never partial)."""
    return models_dir(get_settings()) / "rounds" / f"round-{round_id}"


def refreshed_dir(round_id: int) -> Path:
    """Where a round keeps its parent with the comparison refreshed (app/quality/refresh.py)."""
    folder = checkpoint_dir(round_id)
    return folder.with_name(f".{folder.name}.refreshed")


def voting_model(round_id: int, parent_path: str) -> str:
    """The model a round votes with and trains from: its refreshed parent when it has one."""
    refreshed = refreshed_dir(round_id)
    return str(refreshed) if (refreshed / DIGEST_FILE).is_file() else parent_path


def refresh_pending(round_id: int, config: RoundConfigIn) -> bool:
    """Whether the round asks for a refresh that has not run (or been skipped) yet."""
    if not config.refresh_steps:
        return False
    with session_scope() as db:
        found = db.get(Round, round_id)
        return found is not None and "refresh" not in (found.progress or {})


def parent_round(round_id: int) -> tuple[int, RoundConfigIn] | None:
    """The round that produced this round's parent version (its id and config), if any."""
    with session_scope() as db:
        found = db.get(Round, round_id)
        if found is None:
            return None
        source = db.scalars(
            select(Round).where(Round.candidate_version_id == found.parent_version_id)
        ).first()
        if source is None:
            return None
        return source.id, RoundConfigIn.model_validate(source.config)


def vote_tasks(round_id: int, chunk_size: int) -> list[tuple[str, list]]:
    """A vote task for every chunk of the round's pairs."""
    with session_scope() as db:
        total = db.scalar(select(func.count()).where(Pair.round_id == round_id)) or 0
    return [
        ("evoq.rounds.vote_chunk", [round_id, c]) for c in range(chunk_count(total, chunk_size))
    ]


def load_round(round_id: int, expected: str) -> tuple[RoundConfigIn, str] | None:
    """The round's config and parent checkpoint when it is in `expected` status and not
    cancelled; None otherwise (the task is stale or the round was stopped)."""
    with session_scope() as db:
        found = db.get(Round, round_id)
        if found is None or found.status != expected:
            return None
        if found.cancel_requested:
            rounds.finish(db=db, round_id=round_id, status="cancelled", error="cancelled")
            return None
        parent = registry.get_or_raise(db=db, version_id=found.parent_version_id)
        return RoundConfigIn.model_validate(found.config), parent.checkpoint_path


def rounds_advance(round_id: int, expected: str, new: str) -> bool:
    """Compare-and-set a round's status in its own transaction."""
    with session_scope() as db:
        return rounds.advance(db=db, round_id=round_id, expected=expected, new=new)


def fail(round_id: int, error: str) -> None:
    """Fail a running round with `error` and drop its unregistered checkpoint."""
    with session_scope() as db:
        found = db.get(Round, round_id)
        if found is not None and found.running_lock is not None:
            rounds.finish(db=db, round_id=round_id, status="failed", error=error)
    remove_unregistered_checkpoint(round_id)


def remove_unregistered_checkpoint(round_id: int) -> None:
    """Delete the round's checkpoint folder unless a model version points at it, and the
    staging and trainer folders a worker killed mid-write leaves beside it."""
    with session_scope() as db:
        found = db.get(Round, round_id)
        registered = found is not None and found.candidate_version_id is not None
    folder = checkpoint_dir(round_id)
    if registered:
        return
    for path in [folder, *folder.parent.glob(f".{folder.name}.*")]:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)


def image_loader(db_paths: dict[str, str]) -> Callable[[str], Any]:
    """A loader from sha256 to an RGB image, for the shas in `db_paths`."""
    return path_loader(db_paths)


def image_paths(shas: set[str]) -> dict[str, str]:
    """The stored path of each corpus image in `shas`."""
    with session_scope() as db:
        rows = db.execute(select(Image.sha256, Image.path).where(Image.sha256.in_(shas))).all()
    return dict(rows)


def votes(round_id: int, *, holdout: bool) -> list[VoteResult]:
    """The round's voted pairs of the training (or holdout) split; variants as Variant keys."""
    with session_scope() as db:
        rows = db.scalars(
            select(Pair).where(
                Pair.round_id == round_id, Pair.holdout.is_(holdout), Pair.voted_at.is_not(None)
            )
        ).all()
        return [
            VoteResult(
                parse_variant(p.image_a, p.variant_a),
                parse_variant(p.image_b, p.variant_b),
                p.votes_a,
                p.votes_b,
                p.invalid,
                p.p_star,
                p.holdout,
            )
            for p in rows
        ]


def variant_spec(key: Hashable) -> str | None:
    """How a pair row stores a key's variant ("kind-level"), None for a stored image."""
    return key.spec if isinstance(key, Variant) else None


def round_image_loader(config: RoundConfigIn, keys: Collection[Hashable]) -> Callable[[Any], Any]:
    """A loader for the round's image keys: stored images by sha256, variants derived from
    their reference with the round's seed."""
    load = image_loader(image_paths({str(reference_of(k)) for k in keys}))
    return variant_loader(load, config.seed) if config.augment else load
