"""ORM rows of the score scale: anchor sets (append-only history), their images, version maps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow


class AnchorSet(Base):
    """A frozen set of reference images. Append-only: the newest row is the current set, older
    rows are the history of replacements."""

    __tablename__ = "anchor_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The version whose scale the targets are on (the first calibrated version).
    reference_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    # The version that scored the targets (the active one when the set was frozen).
    scored_by_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    source: Mapped[str] = mapped_column(String(16))  # synthetic, corpus, upload, sha256
    size: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnchorImage(Base):
    """One anchor and its target score on the reference scale."""

    __tablename__ = "anchor_images"
    __table_args__ = (UniqueConstraint("anchor_set_id", "idx", name="uq_anchor_images_set_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    anchor_set_id: Mapped[int] = mapped_column(
        ForeignKey("anchor_sets.id", ondelete="CASCADE"), index=True
    )
    idx: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    target: Mapped[float] = mapped_column(Float)


class VersionCalibration(Base):
    """A version's map onto the reference scale. Written once, like the version itself."""

    __tablename__ = "version_calibrations"

    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    anchor_set_id: Mapped[int] = mapped_column(ForeignKey("anchor_sets.id"))
    reference_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    method: Mapped[str] = mapped_column(String(16))
    score_map: Mapped[dict[str, Any]] = mapped_column(JSON)
    anchors: Mapped[int] = mapped_column(Integer)
    residual: Mapped[float] = mapped_column(Float)
    rmse: Mapped[float] = mapped_column(Float)
    # Mean absolute change of raw anchor scores from the parent (None for the reference).
    raw_drift: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
