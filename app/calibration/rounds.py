"""The calibration stage of a round: score the anchors with parent and candidate, fit the
candidate's map onto the reference scale, and store it once the candidate is registered."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.calibration import anchors, service
from app.db import session_scope
from app.quality.calibration import Calibration, CalibrationError, ScoreMap, fit, mean_abs_change
from app.settings import Settings


def calibrate_candidate(
    settings: Settings,
    *,
    parent_id: int,
    parent: anchors.RawScorer,
    candidate: anchors.RawScorer,
) -> dict[str, Any]:
    """Fit the candidate's map on the current anchor set (frozen now with the parent if none
    was); a JSON-safe record of the fit, or of why it cannot fit."""
    anchors.freeze_if_missing(settings, parent_id, parent)
    with session_scope() as db:
        current = service.current_set(db=db)
        anchor_set_id, reference_id = current.id, current.reference_version_id
    items, targets = anchors.anchors_of(anchor_set_id)
    images = anchors.load(items)
    candidate_raw = candidate(images)
    record: dict[str, Any] = {
        "anchor_set_id": anchor_set_id,
        "reference_version_id": reference_id,
        "anchors": len(items),
        "raw_drift": mean_abs_change(parent(images), candidate_raw),
    }
    try:
        calibration = fit(candidate_raw, targets)
    except CalibrationError as exc:
        return {**record, "fit": False, "error": str(exc)}
    return {
        **record,
        "fit": True,
        "residual": calibration.residual,
        "rmse": calibration.rmse,
        "map": calibration.map.to_json(),
    }


def gate_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """The numbers the gate checks and the version keeps (without the breakpoints)."""
    return {
        "calibration_fit": record.get("fit", False),
        "calibration_residual": record.get("residual"),
        "calibration_error": record.get("error"),
        "scale_drift_raw": record.get("raw_drift"),
        "calibration_anchors": record.get("anchors"),
    }


def store_fitted(*, db: Session, version_id: int, record: dict[str, Any]) -> None:
    """Store the fitted map with the newly registered version (nothing when it did not fit)."""
    if not record.get("fit"):
        return
    service.record_calibration(
        db=db,
        version_id=version_id,
        anchor_set_id=record["anchor_set_id"],
        reference_version_id=record["reference_version_id"],
        calibration=Calibration(
            ScoreMap.from_json(record["map"]),
            anchors=record["anchors"],
            residual=record["residual"],
            rmse=record["rmse"],
        ),
        raw_drift=record["raw_drift"],
    )
