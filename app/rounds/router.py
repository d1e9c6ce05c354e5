"""Admin endpoints of evolution rounds, the continuous schedule and probe sets."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from app.corpus.limits import UploadLimits
from app.corpus.uploads import multipart_openapi, read_multipart
from app.deps import ADMIN_ERRORS, get_db, get_limits, get_settings_dep, require_admin
from app.errors import EvoqError
from app.params import RowId
from app.quality.marker import reasoning_default
from app.registry import service as registry
from app.rounds import estimate, service
from app.rounds.schemas import (
    ProbeSetOut,
    RoundConfigIn,
    RoundEstimate,
    RoundList,
    RoundOut,
    ScheduleIn,
    ScheduleOut,
    StartRoundIn,
)
from app.settings import Settings
from workers.enqueue import enqueue_round

log = logging.getLogger("evoq.rounds")

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=ADMIN_ERRORS,
)


@router.post(
    "/rounds",
    response_model=RoundOut,
    status_code=201,
    summary="Start an evolution round",
    responses={
        409: {"description": "A round is already running, or the corpus is too small."},
        422: {"description": "Invalid config (`problems` names each field)."},
    },
)
def start_round(
    body: StartRoundIn,
    actor: str = Depends(require_admin),
    db: Session = Depends(get_db),
    settings: Settings = Depends(get_settings_dep),
) -> RoundOut:
    """Validates the config, records a pending round and queues its pipeline."""
    body.config.check_training_processes(settings.train_processes)
    created = service.create(db=db, config=body.config, actor=actor)
    db.commit()
    try:
        enqueue_round(created.id)
    except Exception as exc:  # broker down: do not leave a round holding the running lock
        service.finish(db=db, round_id=created.id, status="failed", error=f"not queued: {exc}")
        db.commit()
        raise EvoqError("broker_unavailable", f"could not queue the round: {exc}", 503) from exc
    out = RoundOut.model_validate(created)
    try:  # the round is queued either way; the estimate only informs
        out.estimate = _estimate(db, settings, body.config)
    except Exception as exc:
        log.warning("no round estimate", extra={"round": created.id, "error": repr(exc)})
    return out


def _estimate(db: Session, settings: Settings, config: RoundConfigIn) -> RoundEstimate:
    """`evoq plan`'s estimate for the serving version on this process's device."""
    active = registry.get_active(db=db)
    params = estimate.count_parameters(active.checkpoint_path) if active else None
    # Rounds prompt as the serving model does: a reasoning model votes and rolls out at length.
    reasoning = reasoning_default(active.checkpoint_path) if active else True
    found: dict[str, Any] = estimate.round_estimate(
        config,
        model_params=params or estimate.DEFAULT_PARAMS,
        device=estimate.this_device(settings.device),
        prefix_sharing=settings.generation_backend == "vllm",
        reasoning=reasoning,
    )
    return RoundEstimate.model_validate(found)


@router.post(
    "/rounds/estimate",
    response_model=RoundEstimate,
    summary="Estimate a round's time on this machine without starting it",
    responses={422: {"description": "Invalid config (`problems` names each field)."}},
)
def estimate_round(
    body: StartRoundIn,
    db: Session = Depends(get_db),
    settings: Settings = Depends(get_settings_dep),
) -> RoundEstimate:
    """The same estimate POST /v1/admin/rounds answers with, from a FLOP count (`evoq plan`):
    per stage, on this server's device, with a warning above one hour."""
    return _estimate(db, settings, body.config)


@router.get("/rounds", response_model=RoundList, summary="List rounds, newest first")
def list_rounds(limit: int = Query(50, ge=1, le=500), db: Session = Depends(get_db)) -> RoundList:
    """Recent rounds with status and progress."""
    return RoundList(
        items=[RoundOut.model_validate(r) for r in service.get_all(db=db, limit=limit)]
    )


@router.get("/rounds/{round_id}", response_model=RoundOut, summary="One round")
def get_round(round_id: RowId, db: Session = Depends(get_db)) -> RoundOut:
    """Status, progress (pairs voted, training step), gate decision and error; the calibration
    stage's score map as a summary (`/calibration` has it whole)."""
    return RoundOut.model_validate(service.get_or_raise(db=db, round_id=round_id))


@router.get(
    "/rounds/{round_id}/calibration",
    summary="The calibration stage's whole record, score map included",
    responses={404: {"description": "No such round, or it has no calibration yet."}},
)
def get_round_calibration(round_id: RowId, db: Session = Depends(get_db)) -> dict[str, Any]:
    """The candidate's fit onto the reference scale: anchors, residual, rmse, raw drift and the
    map's breakpoints (`map.xs` raw scores onto `map.ys` reference scores)."""
    found = service.get_or_raise(db=db, round_id=round_id)
    record = (found.progress or {}).get("calibration")
    if not isinstance(record, dict):
        raise EvoqError(
            "no_calibration", f"round {round_id} has not reached its calibration stage", 404
        )
    return record


@router.post("/rounds/{round_id}/cancel", response_model=RoundOut, summary="Cancel a round")
def cancel_round(
    round_id: RowId, actor: str = Depends(require_admin), db: Session = Depends(get_db)
) -> RoundOut:
    """Pending and voting rounds stop now; training and evaluation stop at the next step."""
    cancelled = service.cancel(db=db, round_id=round_id, actor=actor)
    db.commit()
    return RoundOut.model_validate(cancelled)


@router.get("/schedule", response_model=ScheduleOut, summary="Continuous-mode schedule")
def get_schedule(db: Session = Depends(get_db)) -> ScheduleOut:
    """Whether continuous mode is on, its threshold and round config."""
    schedule = service.get_schedule(db=db)
    db.commit()
    return ScheduleOut.model_validate(schedule)


@router.put("/schedule", response_model=ScheduleOut, summary="Set the continuous-mode schedule")
def set_schedule(
    body: ScheduleIn,
    actor: str = Depends(require_admin),
    db: Session = Depends(get_db),
    settings: Settings = Depends(get_settings_dep),
) -> ScheduleOut:
    """Celery beat starts a round when `min_new_images` arrived and none is running."""
    body.config.check_training_processes(settings.train_processes)
    schedule = service.set_schedule(
        db=db,
        enabled=body.enabled,
        min_new_images=body.min_new_images,
        config=body.config,
        actor=actor,
    )
    db.commit()
    return ScheduleOut.model_validate(schedule)


@router.post(
    "/probe-sets",
    response_model=ProbeSetOut,
    status_code=201,
    summary="Register a labelled probe set (gate and report only)",
    openapi_extra=multipart_openapi(
        {
            "name": {"type": "string", "description": "Name of the probe set."},
            "labels": {
                "type": "string",
                "format": "binary",
                "description": "CSV with columns filename,mos (higher MOS = better).",
            },
        },
        required=["name", "labels"],
    ),
)
async def register_probe_set(
    request: Request,
    db: Session = Depends(get_db),
    limits: UploadLimits = Depends(get_limits),
    settings: Settings = Depends(get_settings_dep),
) -> ProbeSetOut:
    """Images are stored apart from the corpus: they gate candidates and are never trained on."""
    form, files = await read_multipart(request, limits)
    labels = form.get("labels")
    name = str(form.get("name") or "").strip()
    if not name or labels is None or isinstance(labels, str):
        raise EvoqError("bad_probe_set", "send `name` and a `labels` CSV file with the images", 422)
    probe, skipped = service.register_probe_set(
        db=db,
        name=name,
        labels_csv=await labels.read(),
        files=files,
        limits=limits,
        root=settings.data_dir.resolve() / "probes",
    )
    db.commit()
    return ProbeSetOut(id=probe.id, name=probe.name, images=len(probe.labels), skipped=skipped)
