"""Score scale: the current anchor set and its history, freezing a set, each version's map."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calibration.models import AnchorImage, AnchorSet, VersionCalibration
from app.errors import EvoqError
from app.quality.calibration import Calibration, ScoreMap

log = logging.getLogger("evoq.calibration")


@dataclass(frozen=True)
class Anchor:
    """An anchor image on disk, identified by its sha256."""

    sha256: str
    path: str


@dataclass(frozen=True)
class VersionScale:
    """What serving needs of a version's calibration: the map and the reference version."""

    score_map: ScoreMap
    reference_version_id: int
    anchor_set_id: int


class NoAnchorSet(EvoqError):
    """The anchor set has not been frozen yet."""

    def __init__(self) -> None:
        super().__init__("no_anchor_set", "no anchor set has been frozen yet", 404)


def current_set(*, db: Session) -> AnchorSet | None:
    """The newest anchor set (the one new candidates are calibrated on), or None."""
    return db.scalars(select(AnchorSet).order_by(AnchorSet.id.desc()).limit(1)).first()


def history(*, db: Session, limit: int = 100) -> list[AnchorSet]:
    """Anchor sets, newest first: the record of every replacement."""
    return list(db.scalars(select(AnchorSet).order_by(AnchorSet.id.desc()).limit(limit)))


def images(*, db: Session, anchor_set_id: int) -> list[AnchorImage]:
    """The anchors of a set in their stored order."""
    stmt = select(AnchorImage).where(AnchorImage.anchor_set_id == anchor_set_id)
    return list(db.scalars(stmt.order_by(AnchorImage.idx)))


def get_calibration(*, db: Session, version_id: int) -> VersionCalibration | None:
    """A version's stored map, or None when it was never calibrated."""
    return db.get(VersionCalibration, version_id)


def calibrations(*, db: Session) -> dict[int, VersionCalibration]:
    """Every stored map by version id."""
    return {row.version_id: row for row in db.scalars(select(VersionCalibration))}


def version_scale(*, db: Session, version_id: int) -> VersionScale | None:
    """The map serving applies to a version's scores, or None (served uncalibrated)."""
    row = get_calibration(db=db, version_id=version_id)
    if row is None:
        return None
    return VersionScale(
        ScoreMap.from_json(row.score_map), row.reference_version_id, row.anchor_set_id
    )


def record_calibration(
    *,
    db: Session,
    version_id: int,
    anchor_set_id: int,
    reference_version_id: int,
    calibration: Calibration,
    raw_drift: float | None,
) -> VersionCalibration:
    """Store a version's map. Written once: a second call returns the stored row unchanged."""
    existing = get_calibration(db=db, version_id=version_id)
    if existing is not None:
        return existing
    row = VersionCalibration(
        version_id=version_id,
        anchor_set_id=anchor_set_id,
        reference_version_id=reference_version_id,
        method=calibration.map.method,
        score_map=calibration.map.to_json(),
        anchors=calibration.anchors,
        residual=calibration.residual,
        rmse=calibration.rmse,
        raw_drift=raw_drift,
    )
    db.add(row)
    db.flush()
    return row


def record_anchor_set(
    *,
    db: Session,
    anchors: Sequence[Anchor],
    raw_scores: Sequence[float],
    scored_by_version_id: int,
    source: str,
    actor: str,
    reason: str,
    seed: int | None = None,
) -> AnchorSet:
    """Freeze `anchors` with the targets the scoring version gives them on the reference scale.

    With a calibrated scoring version the targets are its calibrated scores and the reference
    stays; otherwise it becomes the reference: targets are its raw scores, its map the identity."""
    if len(anchors) != len(raw_scores) or not anchors:
        raise ValueError("one raw score per anchor, and at least one anchor")
    scale = version_scale(db=db, version_id=scored_by_version_id)
    if scale is None:
        reference_id, targets = scored_by_version_id, [float(s) for s in raw_scores]
    else:
        reference_id = scale.reference_version_id
        targets = [float(s) for s in scale.score_map.apply(raw_scores)]
    anchor_set = AnchorSet(
        reference_version_id=reference_id,
        scored_by_version_id=scored_by_version_id,
        source=source,
        size=len(anchors),
        seed=seed,
        actor=actor,
        reason=reason,
    )
    db.add(anchor_set)
    db.flush()
    db.add_all(
        AnchorImage(anchor_set_id=anchor_set.id, idx=i, sha256=a.sha256, path=a.path, target=t)
        for i, (a, t) in enumerate(zip(anchors, targets, strict=True))
    )
    if scale is None:
        identity = Calibration(ScoreMap.identity(), anchors=len(anchors), residual=0.0, rmse=0.0)
        record_calibration(
            db=db,
            version_id=scored_by_version_id,
            anchor_set_id=anchor_set.id,
            reference_version_id=reference_id,
            calibration=identity,
            raw_drift=None,
        )
    db.flush()
    log.info(
        "anchor set frozen",
        extra={
            "anchor_set": anchor_set.id,
            "size": len(anchors),
            "source": source,
            "reference": reference_id,
            "actor": actor,
        },
    )
    return anchor_set
