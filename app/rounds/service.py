"""Evolution rounds: start (one at a time), cancel, finish, schedule, probe sets."""

from __future__ import annotations

import csv
import io
import logging
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.corpus import service as corpus
from app.corpus.limits import UploadLimits
from app.corpus.uploads import UploadedFile
from app.corpus.validation import validate_image_bytes
from app.errors import EvoqError
from app.registry import service as registry
from app.rounds.models import (
    ACTIVE_ROUND_STATUSES,
    AWAITING_APPROVAL,
    ProbeSet,
    Round,
    Schedule,
)
from app.rounds.schemas import RoundConfigIn
from app.timeutil import utcnow

log = logging.getLogger("evoq.rounds")


class RoundConflict(EvoqError):
    """A round is already running."""

    def __init__(self, running: Round | None) -> None:
        detail = (
            f"round {running.id} is {running.status}; one round runs at a time"
            if running is not None
            else "another round is running; one round runs at a time"
        )
        super().__init__(
            "round_running", detail, 409, extra={"round_id": running.id if running else None}
        )


def get_or_raise(*, db: Session, round_id: int) -> Round:
    """The round with this id, or a 404 error."""
    found = db.get(Round, round_id)
    if found is None:
        raise EvoqError("round_not_found", f"round {round_id} does not exist", 404)
    return found


def get_all(*, db: Session, limit: int = 100) -> list[Round]:
    """Rounds, newest first."""
    return list(db.scalars(select(Round).order_by(Round.id.desc()).limit(limit)))


def get_running(*, db: Session) -> Round | None:
    """The round that holds the running lock, if any."""
    return db.scalars(select(Round).where(Round.running_lock.is_not(None))).first()


def create(*, db: Session, config: RoundConfigIn, actor: str, trigger: str = "manual") -> Round:
    """A new pending round from the active version, unless one is running (409).

    The caller commits and then enqueues the pipeline (`workers.enqueue.enqueue_round`)."""
    running = get_running(db=db)
    if running is not None:
        raise RoundConflict(running)
    trainable = corpus.count_trainable(db=db)
    if trainable < 2:
        raise EvoqError(
            "corpus_too_small",
            f"a round needs at least 2 trainable corpus images, there are {trainable}",
            409,
        )
    parent = registry.get_active(db=db)
    if parent is None:
        raise EvoqError("no_active_model", "no model version is active yet", 409)
    new_round = Round(
        status="pending",
        config=config.model_dump(mode="json"),
        parent_version_id=parent.id,
        progress={},
        gate={},
        trigger=trigger,
        actor=actor,
        running_lock=1,
    )
    db.add(new_round)
    try:
        db.flush()
    except IntegrityError as exc:  # a concurrent start won the race for the running lock
        db.rollback()
        raise RoundConflict(get_running(db=db)) from exc
    log.info("round created", extra={"round": new_round.id, "actor": actor, "trigger": trigger})
    return new_round


def finish(*, db: Session, round_id: int, status: str, error: str | None = None) -> Round:
    """Move a round to a final status and release the running lock."""
    found = get_or_raise(db=db, round_id=round_id)
    found.status = status
    found.error = error if error is None else error[:4000]
    found.finished_at = utcnow()
    found.running_lock = None
    log.info("round finished", extra={"round": round_id, "status": status, "error": error})
    return found


def advance(*, db: Session, round_id: int, expected: str, new: str) -> bool:
    """Compare-and-set the status: True only for the one caller that made the move."""
    result = db.execute(
        update(Round)
        .where(Round.id == round_id, Round.status == expected, Round.cancel_requested.is_(False))
        .values(status=new, updated_at=utcnow(), heartbeat_at=utcnow())
    )
    return result.rowcount == 1


def cancel(*, db: Session, round_id: int, actor: str) -> Round:
    """Ask a running round to stop; pending and voting rounds stop at once, training and
    evaluating ones at the worker's next step (it then cleans up and marks them cancelled)."""
    found = get_or_raise(db=db, round_id=round_id)
    if found.status not in ACTIVE_ROUND_STATUSES:
        raise EvoqError(
            "round_not_running", f"round {round_id} is {found.status}; nothing to cancel", 409
        )
    found.cancel_requested = True
    if found.status in ("pending", "voting"):
        finish(db=db, round_id=round_id, status="cancelled", error=f"cancelled by {actor}")
    log.info("round cancel requested", extra={"round": round_id, "actor": actor})
    return found


def mark_approved(*, db: Session, version_id: int) -> None:
    """An admin activated a candidate that waited for approval: its round is promoted."""
    waiting = db.scalars(
        select(Round).where(
            Round.candidate_version_id == version_id, Round.status == AWAITING_APPROVAL
        )
    ).first()
    if waiting is not None:
        waiting.status = "promoted"
        waiting.finished_at = utcnow()


def claim_stale_voting(*, db: Session, stale_after_s: float, max_redeliveries: int) -> list[int]:
    """Voting rounds whose heartbeat went stale and that may still redeliver their lost chunks.

    Each claim refreshes the heartbeat and counts one redelivery in `progress`; the claim is a
    compare-and-set on the heartbeat, so two housekeeping passes never claim the same round.
    """
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    stale = db.scalars(
        select(Round).where(
            Round.status == "voting",
            Round.cancel_requested.is_(False),
            Round.heartbeat_at.is_not(None),
            Round.heartbeat_at < cutoff,
        )
    ).all()
    claimed = []
    for found in stale:
        done = int((found.progress or {}).get("chunk_redeliveries", 0))
        if done >= max_redeliveries:
            continue
        won = db.execute(
            update(Round)
            .where(Round.id == found.id, Round.heartbeat_at < cutoff)
            .values(heartbeat_at=utcnow())
        ).rowcount
        if won == 1:
            db.refresh(found)
            found.progress = {**(found.progress or {}), "chunk_redeliveries": done + 1}
            claimed.append(found.id)
    return claimed


def reap_stale(*, db: Session, stale_after_s: float, pending_after_s: float) -> list[int]:
    """Fail running rounds whose worker stopped sending heartbeats (killed, lost, crashed), and
    pending rounds that no worker picked up in time."""
    never_started = db.scalars(
        select(Round).where(
            Round.status == "pending",
            Round.created_at < utcnow() - timedelta(seconds=pending_after_s),
        )
    ).all()
    for found in never_started:
        finish(
            db=db,
            round_id=found.id,
            status="failed",
            error=f"never picked up: pending for more than {pending_after_s:.0f}s "
            "(no worker took its task, or the broker lost it)",
        )
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    stale = db.scalars(
        select(Round).where(
            Round.status.in_(("voting", "training", "evaluating")),
            Round.heartbeat_at.is_not(None),
            Round.heartbeat_at < cutoff,
        )
    ).all()
    for found in stale:
        finish(
            db=db,
            round_id=found.id,
            status="failed",
            error=f"worker lost: no heartbeat for {stale_after_s:.0f}s while {found.status}",
        )
    return [found.id for found in (*never_started, *stale)]


# ---- continuous mode -----------------------------------------------------------------------


def get_schedule(*, db: Session) -> Schedule:
    """The continuous-mode schedule (created disabled on first use)."""
    schedule = db.get(Schedule, 1)
    if schedule is None:
        schedule = Schedule(id=1, enabled=False, min_new_images=500, config={})
        db.add(schedule)
        db.flush()
    return schedule


def set_schedule(
    *, db: Session, enabled: bool, min_new_images: int, config: RoundConfigIn, actor: str
) -> Schedule:
    """Turn continuous mode on or off and set its threshold and round config."""
    schedule = get_schedule(db=db)
    schedule.enabled = enabled
    schedule.min_new_images = min_new_images
    schedule.config = config.model_dump(mode="json")
    schedule.updated_by = actor
    return schedule


def due_for_continuous_round(*, db: Session) -> Schedule | None:
    """The schedule when continuous mode should start a round now: enabled, none running, and
    at least `min_new_images` arrived since the last round."""
    schedule = get_schedule(db=db)
    if not schedule.enabled or get_running(db=db) is not None:
        return None
    if corpus.stats(db=db).since_last_round < schedule.min_new_images:
        return None
    return schedule


# ---- probe sets ----------------------------------------------------------------------------


def register_probe_set(
    *,
    db: Session,
    name: str,
    labels_csv: bytes,
    files: list[UploadedFile],
    limits: UploadLimits,
    root: Path,
) -> tuple[ProbeSet, list[dict[str, str]]]:
    """Store labelled probe images (CSV `filename,mos`) and make this the active probe set.
    Images are kept apart from the corpus: they gate and report, they never train."""
    mos = _parse_labels(labels_csv)
    accepted: dict[str, tuple[bytes, float]] = {}
    skipped: list[dict[str, str]] = []
    for upload in files:
        if upload.name not in mos:
            skipped.append({"filename": upload.name, "reason": "not in the labels CSV"})
            continue
        try:
            image = validate_image_bytes(upload.name, upload.data, limits)
        except EvoqError as exc:
            skipped.append({"filename": upload.name, "reason": exc.detail})
            continue
        # Stored under its digest, never under a path built from the client's name.
        accepted[f"{image.sha256}.{image.ext}"] = (image.data, mos[upload.name])
    missing = sorted(set(mos) - {u.name for u in files})
    skipped += [{"filename": m, "reason": "listed in the CSV but not uploaded"} for m in missing]
    if len(accepted) < 3:  # refused before anything is written: no orphan files
        raise EvoqError(
            "probe_set_too_small",
            f"a probe set needs at least 3 labelled images, got {len(accepted)}",
        )
    folder = root / _safe_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    labels: dict[str, float] = {}
    for stored, (data, score) in accepted.items():
        (folder / stored).write_bytes(data)
        labels[stored] = score
    db.execute(update(ProbeSet).values(active=False))
    existing = db.scalars(select(ProbeSet).where(ProbeSet.name == name)).first()
    if existing is not None:
        db.delete(existing)
        db.flush()
    probe = ProbeSet(name=name, path=str(folder), labels=labels, active=True)
    db.add(probe)
    db.flush()
    return probe, skipped


def get_active_probe_set(*, db: Session) -> ProbeSet | None:
    """The probe set the gate uses, if an operator registered one."""
    return db.scalars(
        select(ProbeSet).where(ProbeSet.active.is_(True)).order_by(ProbeSet.id.desc())
    ).first()


def _parse_labels(data: bytes) -> dict[str, float]:
    try:
        # newline="" lets the csv module see quoted line breaks; a stray one is a csv.Error.
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    except UnicodeDecodeError as exc:
        raise EvoqError("bad_labels", "the labels CSV is not UTF-8 text") from exc
    except csv.Error as exc:
        raise EvoqError("bad_labels", f"the labels CSV cannot be parsed: {exc}") from exc
    if not rows or not {"filename", "mos"} <= set(rows[0]):
        raise EvoqError("bad_labels", "the labels CSV needs the columns filename,mos")
    out: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        try:
            out[row["filename"].strip()] = float(row["mos"])
        except (TypeError, ValueError) as exc:
            raise EvoqError("bad_labels", f"labels CSV line {line}: mos is not a number") from exc
    return out


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:64]
    return cleaned or "probe"
