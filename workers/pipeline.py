"""The round pipeline as Celery tasks: prepare → vote chunks → train → evaluate → gate.

Every task reads its state from the database and checks the round's status before acting, so a
redelivered or repeated task does nothing twice; the round's heartbeat, refreshed while a task
runs, lets housekeeping fail rounds whose worker died.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from celery.signals import worker_ready
from sqlalchemy import func, select

from app.corpus import service as corpus
from app.corpus.models import Image
from app.db import session_scope
from app.quality.images import open_image
from app.quality.metrics import srcc
from app.quality.model import QualityModel
from app.quality.pairs import Pair as ImagePair
from app.quality.pairs import max_pairs, sample_pairs
from app.quality.voting import VoteResult, chunk_count, chunk_seed, vote_chunk
from app.registry import service as registry
from app.registry.bootstrap import models_dir
from app.rounds import gate as gate_rules
from app.rounds import service as rounds
from app.rounds.models import AWAITING_APPROVAL, Pair, Round
from app.rounds.schemas import RoundConfigIn
from app.scoring.lifecycle import model_loader
from app.settings import get_settings
from app.timeutil import utcnow
from workers.celery_app import celery_app

log = logging.getLogger("evoq.pipeline")


# ---- plumbing ------------------------------------------------------------------------------


def enqueue_round(round_id: int) -> None:
    """Start the pipeline of a committed pending round."""
    celery_app.send_task("evoq.rounds.prepare", args=[round_id])


def checkpoint_dir(round_id: int) -> Path:
    """Where a round's candidate checkpoint is written (complete or absent, never partial)."""
    return models_dir(get_settings()) / "rounds" / f"round-{round_id}"


@contextlib.contextmanager
def heartbeat(round_id: int) -> Iterator[None]:
    """Refresh the round's heartbeat from a background thread while the body runs."""
    interval = get_settings().round_heartbeat_seconds
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception), session_scope() as db:
                found = db.get(Round, round_id)
                if found is not None:
                    found.heartbeat_at = utcnow()

    _touch(round_id)
    thread = threading.Thread(target=beat, name=f"heartbeat-{round_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _touch(round_id: int, **progress: Any) -> None:
    with session_scope() as db:
        found = db.get(Round, round_id)
        if found is not None:
            found.heartbeat_at = utcnow()
            if progress:
                found.progress = {**(found.progress or {}), **progress}


def round_task(name: str) -> Callable:
    """A pipeline task: any exception fails the round (with its message) and cleans up."""

    def wrap(fn: Callable[[int], None]) -> Callable:
        @functools.wraps(fn)
        def run(round_id: int, *args: Any) -> None:
            try:
                fn(round_id, *args)
            except Exception as exc:
                log.exception("round task failed", extra={"round": round_id, "task": name})
                _fail(round_id, f"{name}: {type(exc).__name__}: {exc}")
                raise

        return celery_app.task(name=name, acks_late=True)(run)

    return wrap


def _fail(round_id: int, error: str) -> None:
    with session_scope() as db:
        found = db.get(Round, round_id)
        if found is not None and found.running_lock is not None:
            rounds.finish(db=db, round_id=round_id, status="failed", error=error)
    _remove_unregistered_checkpoint(round_id)


def _remove_unregistered_checkpoint(round_id: int) -> None:
    with session_scope() as db:
        found = db.get(Round, round_id)
        registered = found is not None and found.candidate_version_id is not None
    folder = checkpoint_dir(round_id)
    if not registered and folder.exists():
        shutil.rmtree(folder, ignore_errors=True)


def _load_round(round_id: int, expected: str) -> tuple[RoundConfigIn, str] | None:
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


def _cancel_requested(round_id: int) -> bool:
    with session_scope() as db:
        found = db.get(Round, round_id)
        return found is None or found.cancel_requested or found.running_lock is None


_models: dict[str, QualityModel] = {}


def cached_model(checkpoint_path: str) -> QualityModel:
    """The model of a checkpoint, loaded once per worker process (two kept at most)."""
    if checkpoint_path not in _models:
        while len(_models) >= 2:
            _models.pop(next(iter(_models)))
        _models[checkpoint_path] = model_loader(get_settings())(checkpoint_path)
    return _models[checkpoint_path]


def _release_models() -> None:
    _models.clear()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _image_loader(db_paths: dict[str, str]) -> Callable[[str], Any]:
    def load(sha256: str) -> Any:
        with open_image(db_paths[sha256]) as img:
            return img.convert("RGB") if img.mode != "RGB" else img.copy()

    return load


def _image_paths(shas: set[str]) -> dict[str, str]:
    with session_scope() as db:
        rows = db.execute(select(Image.sha256, Image.path).where(Image.sha256.in_(shas))).all()
    return dict(rows)


def _votes(round_id: int, *, holdout: bool) -> list[VoteResult]:
    with session_scope() as db:
        rows = db.scalars(
            select(Pair).where(
                Pair.round_id == round_id, Pair.holdout.is_(holdout), Pair.voted_at.is_not(None)
            )
        ).all()
        return [
            VoteResult(p.image_a, p.image_b, p.votes_a, p.votes_b, p.invalid, p.p_star, p.holdout)
            for p in rows
        ]


# ---- tasks ---------------------------------------------------------------------------------


@round_task("evoq.rounds.prepare")
def prepare(round_id: int) -> None:
    """Sample the round's pairs from the trainable corpus, then fan out the voting chunks."""
    loaded = _load_round(round_id, "pending")
    if loaded is None:
        return
    config, _parent = loaded
    with session_scope() as db:
        if not db.scalar(select(func.count()).where(Pair.round_id == round_id)):
            shas = [image.sha256 for image in corpus.get_trainable(db=db)]
            n_pairs = min(config.pairs, max_pairs(len(shas)))
            sampled = sample_pairs(shas, n_pairs, config.holdout_fraction, config.seed)
            db.add_all(
                Pair(
                    round_id=round_id,
                    idx=i,
                    chunk=i // config.chunk_size,
                    image_a=p.a,
                    image_b=p.b,
                    holdout=p.holdout,
                )
                for i, p in enumerate(sampled)
            )
        total = db.scalar(select(func.count()).where(Pair.round_id == round_id)) or 0
        chunks = chunk_count(total, config.chunk_size)
        found = db.get(Round, round_id)
        found.started_at = found.started_at or utcnow()
        found.progress = {"pairs_total": total, "pairs_voted": 0, "chunks_total": chunks}
    if not rounds_advance(round_id, "pending", "voting"):
        return
    for chunk in range(chunks):
        celery_app.send_task("evoq.rounds.vote_chunk", args=[round_id, chunk])


def rounds_advance(round_id: int, expected: str, new: str) -> bool:
    """Compare-and-set a round's status in its own transaction."""
    with session_scope() as db:
        return rounds.advance(db=db, round_id=round_id, expected=expected, new=new)


@round_task("evoq.rounds.vote_chunk")
def vote(round_id: int, chunk: int) -> None:
    """Vote one chunk; the counts written are absolute, so a re-run never double-counts."""
    loaded = _load_round(round_id, "voting")
    if loaded is None:
        return
    config, parent_path = loaded
    with heartbeat(round_id):
        with session_scope() as db:
            rows = db.scalars(
                select(Pair)
                .where(Pair.round_id == round_id, Pair.chunk == chunk)
                .order_by(Pair.idx)
            ).all()
            todo = [(p.id, p.image_a, p.image_b, p.holdout) for p in rows if p.voted_at is None]
        if todo:
            pairs = [ImagePair(a, b, holdout) for _id, a, b, holdout in todo]
            load = _image_loader(_image_paths({k for p in pairs for k in (p.a, p.b)}))
            results = vote_chunk(
                cached_model(parent_path),
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
            voted = db.scalar(
                select(func.count()).where(Pair.round_id == round_id, Pair.voted_at.is_not(None))
            )
            total = db.scalar(select(func.count()).where(Pair.round_id == round_id))
            found = db.get(Round, round_id)
            found.progress = {**found.progress, "pairs_voted": voted}
    if voted == total and rounds_advance(round_id, "voting", "training"):
        celery_app.send_task("evoq.rounds.train", args=[round_id])


@round_task("evoq.rounds.train")
def train(round_id: int) -> None:
    """GRPO on the voted training pairs; the checkpoint appears only when complete."""
    from app.quality.grpo import TrainingCancelled, train_grpo

    loaded = _load_round(round_id, "training")
    if loaded is None:
        return
    config, parent_path = loaded
    votes = _votes(round_id, holdout=False)
    out_dir = checkpoint_dir(round_id)
    if out_dir.exists():  # a redelivered task after a crash: nothing registered it, start over
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _release_models()

    def progress(step: int, max_steps: int) -> None:
        _touch(round_id, train_step=step, train_max_steps=max_steps)

    with heartbeat(round_id):
        try:
            result = train_grpo(
                parent_path,
                votes,
                _image_loader(_image_paths({k for v in votes for k in (v.a, v.b)})),
                config.grpo_config(),
                out_dir,
                should_stop=lambda: _cancel_requested(round_id),
                on_progress=progress,
            )
        except TrainingCancelled:
            with session_scope() as db:
                rounds.finish(db=db, round_id=round_id, status="cancelled", error="cancelled")
            _remove_unregistered_checkpoint(round_id)
            return
    _touch(
        round_id,
        checkpoint=str(result.checkpoint_dir),
        digest=result.digest,
        train={k: v for k, v in result.metrics.items() if k != "per_step"},
        train_per_step=result.metrics.get("per_step", {}),
    )
    if rounds_advance(round_id, "training", "evaluating"):
        celery_app.send_task("evoq.rounds.evaluate", args=[round_id])


@round_task("evoq.rounds.evaluate")
def evaluate(round_id: int) -> None:
    """Measure candidate and parent on the holdout pairs, the candidate's parse rate and
    spread, and both on the probe set when one is registered."""
    from app.quality.evolution import evaluate_on_pairs

    loaded = _load_round(round_id, "evaluating")
    if loaded is None:
        return
    config, parent_path = loaded
    with session_scope() as db:
        candidate_path = db.get(Round, round_id).progress["checkpoint"]
        probe = rounds.get_active_probe_set(db=db)
        probe_items = (
            [(str(Path(probe.path) / name), mos) for name, mos in sorted(probe.labels.items())]
            if probe
            else []
        )
        trainable = [image.sha256 for image in corpus.get_trainable(db=db)]
    holdout = _votes(round_id, holdout=True)
    eval_shas = random.Random(config.seed).sample(
        trainable, min(config.eval_images, len(trainable))
    )
    load = _image_loader(_image_paths({k for v in holdout for k in (v.a, v.b)} | set(eval_shas)))
    metrics: dict[str, Any] = {}
    with heartbeat(round_id):
        for role, path in (("parent", parent_path), ("candidate", candidate_path)):
            model = cached_model(path)
            on_pairs = evaluate_on_pairs(model, holdout, load, mode="fast", seed=config.seed)
            metrics[f"{role}_holdout_accuracy"] = on_pairs["score_accuracy"]
            metrics[f"{role}_holdout_compare_accuracy"] = on_pairs["compare_accuracy"]
            metrics["holdout_pairs"] = on_pairs["pairs"]
            if probe_items:
                scores = model.score([open_image(p) for p, _ in probe_items], mode="fast")
                metrics[f"{role}_probe_srcc"] = srcc(
                    [s.score for s in scores], [m for _, m in probe_items]
                )
            if _cancel_requested(round_id):
                break
        sampled = cached_model(candidate_path).score(
            [load(s) for s in eval_shas], mode="sampled", n=config.eval_samples, seed=config.seed
        )
    valid = sum(s.valid for s in sampled)
    means = [s.score for s in sampled if s.score is not None]
    metrics["parse_rate"] = valid / max(1, sum(s.n for s in sampled))
    metrics["score_std"] = float(np.std(means)) if len(means) > 1 else 0.0
    metrics["probe_set"] = probe.name if probe else None
    with session_scope() as db:
        found = db.get(Round, round_id)
        found.gate = {**(found.gate or {}), "metrics": _finite(metrics)}
    if not _cancel_requested(round_id):
        celery_app.send_task("evoq.rounds.gate", args=[round_id])


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe metrics: NaN becomes None."""
    return {
        k: (None if isinstance(v, float) and v != v else v)  # noqa: PLR0124 - NaN check
        for k, v in values.items()
    }


@round_task("evoq.rounds.gate")
def gate(round_id: int) -> None:
    """Register the candidate and promote it, park it for approval, or reject it."""
    loaded = _load_round(round_id, "evaluating")
    if loaded is None:
        return
    config, _parent = loaded
    with session_scope() as db:
        found = db.get(Round, round_id)
        metrics = found.gate.get("metrics", {})
        passed, checks = gate_rules.decide(metrics, config)
        if not passed:
            decision, status, version_status = "rejected", "rejected", "rejected"
        elif config.policy == "auto":
            decision, status, version_status = "promoted", "promoted", "candidate"
        else:
            decision, status, version_status = "awaiting approval", AWAITING_APPROVAL, "candidate"
        parent = registry.get_or_raise(db=db, version_id=found.parent_version_id)
        version = registry.create(
            db=db,
            base_model=parent.base_model,
            checkpoint_path=found.progress["checkpoint"],
            digest=found.progress["digest"],
            parent_id=parent.id,
            round_id=round_id,
            metrics={"train": found.progress.get("train", {}), **metrics},
            status=version_status,
            note=f"round {round_id}",
        )
        found.candidate_version_id = version.id
        found.gate = {**found.gate, **gate_rules.as_json(passed, checks, config.policy, decision)}
        if decision == "promoted":
            registry.activate(
                db=db, version_id=version.id, actor=f"round-{round_id}", reason="gate passed"
            )
        rounds.finish(db=db, round_id=round_id, status=status)


@celery_app.task(name="evoq.rounds.housekeeping")
def housekeeping() -> dict[str, Any]:
    """Fail rounds whose worker died; start a round in continuous mode when one is due."""
    settings = get_settings()
    with session_scope() as db:
        failed = rounds.reap_stale(db=db, stale_after_s=settings.round_stale_seconds)
    for round_id in failed:
        _remove_unregistered_checkpoint(round_id)
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
    if started is not None:
        enqueue_round(started)
    return {"failed": failed, "started": started}


@worker_ready.connect
def _housekeeping_at_start(**_kwargs: Any) -> None:
    # A restarted worker notices rounds its predecessor left behind without waiting for beat.
    with contextlib.suppress(Exception):
        housekeeping.delay()
