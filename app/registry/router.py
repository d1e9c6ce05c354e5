"""Model registry endpoints: list versions (public), activate and roll back (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends
from sqlalchemy.orm import Session

from app.calibration import service as calibration
from app.calibration.models import VersionCalibration
from app.calibration.schemas import CalibrationOut
from app.deps import ADMIN_ERRORS, TOKEN_ERRORS, get_db, require_admin, require_read
from app.params import RowId
from app.quality.marker import is_demo_model
from app.registry import service
from app.registry.models import ModelVersion
from app.registry.schemas import ActivateIn, ActivationOut, ModelsOut, VersionOut
from app.rounds import service as rounds

router = APIRouter(
    prefix="/v1/models",
    tags=["models"],
    dependencies=[Depends(require_read)],
    responses=TOKEN_ERRORS,
)
admin_router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=ADMIN_ERRORS,
)


def version_out(
    db: Session,
    version: ModelVersion,
    active_id: int | None,
    calibrated: VersionCalibration | None,
) -> VersionOut:
    """The API view of a version, with its lineage and its map's summary."""
    return VersionOut(
        id=version.id,
        parent_id=version.parent_id,
        round_id=version.round_id,
        base_model=version.base_model,
        checkpoint_path=version.checkpoint_path,
        digest=version.digest,
        status=version.status,
        active=version.id == active_id,
        demo=is_demo_model(version.checkpoint_path),
        lineage=service.lineage(db=db, version_id=version.id),
        metrics=version.metrics or {},
        calibration=CalibrationOut.model_validate(calibrated) if calibrated else None,
        note=version.note,
        created_at=version.created_at,
    )


def _active_id(db: Session) -> int | None:
    activation = service.latest_activation(db=db)
    return activation.version_id if activation else None


@router.get(
    "", response_model=ModelsOut, summary="Versions with lineage, metrics, and which is active"
)
def list_models(db: Session = Depends(get_db)) -> ModelsOut:
    """Every registered version and the activation history (newest first)."""
    active = _active_id(db)
    maps = calibration.calibrations(db=db)
    versions = [version_out(db, v, active, maps.get(v.id)) for v in service.get_all(db=db)]
    return ModelsOut(
        active_version=active,
        demo=any(v.demo for v in versions if v.active),
        versions=versions,
        activations=[
            ActivationOut.model_validate(a, from_attributes=True) for a in service.history(db=db)
        ],
    )


@router.get(
    "/{version_id}", response_model=VersionOut, responses={404: {"description": "No such version."}}
)
def get_model(version_id: RowId, db: Session = Depends(get_db)) -> VersionOut:
    """One version with its lineage and metrics."""
    version = service.get_or_raise(db=db, version_id=version_id)
    return version_out(
        db, version, _active_id(db), calibration.get_calibration(db=db, version_id=version_id)
    )


@admin_router.post(
    "/models/{version_id}/activate",
    response_model=ActivationOut,
    summary="Serve this version (every API process swaps to it)",
)
def activate(
    version_id: RowId,
    body: ActivateIn = Body(default_factory=ActivateIn),
    actor: str = Depends(require_admin),
    db: Session = Depends(get_db),
) -> ActivationOut:
    """Appends an activation; the previous version becomes retired."""
    activation = service.activate(
        db=db, version_id=version_id, actor=actor, reason=body.reason or "manual activation"
    )
    rounds.mark_approved(db=db, version_id=version_id)
    db.commit()
    return ActivationOut.model_validate(activation, from_attributes=True)


@admin_router.post(
    "/rollback",
    response_model=ActivationOut,
    summary="Serve the previously active version again",
    responses={409: {"description": "No earlier version stands in the activation history."}},
)
def rollback(
    body: ActivateIn = Body(default_factory=ActivateIn),
    actor: str = Depends(require_admin),
    db: Session = Depends(get_db),
) -> ActivationOut:
    """Re-activates the version that served before the current one, walking back the activation
    history and skipping versions already rolled back; `version_id` names the version it
    activated, `previous_version_id` the one it replaced."""
    activation = service.rollback(db=db, actor=actor, reason=body.reason or "rollback")
    db.commit()
    return ActivationOut.model_validate(activation, from_attributes=True)
