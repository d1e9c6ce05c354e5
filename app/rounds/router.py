"""Admin endpoints of evolution rounds, the continuous schedule and probe sets."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from app.corpus.limits import UploadLimits
from app.corpus.uploads import multipart_openapi, read_multipart
from app.deps import ADMIN_ERRORS, get_db, get_limits, get_settings_dep, require_admin
from app.errors import EvoqError
from app.params import RowId
from app.rounds import service
from app.rounds.schemas import (
    ProbeSetOut,
    RoundList,
    RoundOut,
    ScheduleIn,
    ScheduleOut,
    StartRoundIn,
)
from app.settings import Settings
from workers.enqueue import enqueue_round

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
    return RoundOut.model_validate(created)


@router.get("/rounds", response_model=RoundList, summary="List rounds, newest first")
def list_rounds(limit: int = Query(50, ge=1, le=500), db: Session = Depends(get_db)) -> RoundList:
    """Recent rounds with status and progress."""
    return RoundList(
        items=[RoundOut.model_validate(r) for r in service.get_all(db=db, limit=limit)]
    )


@router.get("/rounds/{round_id}", response_model=RoundOut, summary="One round")
def get_round(round_id: RowId, db: Session = Depends(get_db)) -> RoundOut:
    """Status, progress (pairs voted, training step), gate decision and error."""
    return RoundOut.model_validate(service.get_or_raise(db=db, round_id=round_id))


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
