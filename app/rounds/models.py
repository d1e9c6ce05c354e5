"""ORM rows of evolution rounds, their voted pairs, probe sets and the continuous schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow

ROUND_STATUSES = (
    "pending",
    "voting",
    "training",
    "evaluating",
    "promoted",
    "rejected",
    "failed",
    "cancelled",
    "awaiting_approval",
)
ACTIVE_ROUND_STATUSES = ("pending", "voting", "training", "evaluating")
# The manual gate policy parks a passing candidate here until an admin activates it.
AWAITING_APPROVAL = "awaiting_approval"
FINAL_ROUND_STATUSES = ("promoted", "rejected", "failed", "cancelled", AWAITING_APPROVAL)


class Round(Base):
    """One evolution round: vote → train → evaluate → gate."""

    __tablename__ = "rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(24), default="pending", index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    candidate_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gate: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    actor: Mapped[str] = mapped_column(String(128), default="admin")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # 1 while the round runs, NULL once it ended: the unique constraint admits one running round
    # even when two start requests race (NULLs never collide).
    running_lock: Mapped[int | None] = mapped_column(Integer, unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Refreshed by the worker running the round; a stale one means the worker died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Pair(Base):
    """A voted image pair of a round. Image ids are sha256 strings, kept even if the image is
    later deleted from the corpus, so a round's record stays complete."""

    __tablename__ = "pairs"
    __table_args__ = (UniqueConstraint("round_id", "idx", name="uq_pairs_round_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    chunk: Mapped[int] = mapped_column(Integer, index=True)
    image_a: Mapped[str] = mapped_column(String(64))
    image_b: Mapped[str] = mapped_column(String(64))
    # A derived variant of the stored image ("kind-level", augment rounds only); never stored.
    variant_a: Mapped[str | None] = mapped_column(String(32), nullable=True)
    variant_b: Mapped[str | None] = mapped_column(String(32), nullable=True)
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    votes_a: Mapped[int | None] = mapped_column(Integer, nullable=True)
    votes_b: Mapped[int | None] = mapped_column(Integer, nullable=True)
    invalid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    p_star: Mapped[float | None] = mapped_column(Float, nullable=True)
    voted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ProbeSet(Base):
    """An operator's labelled images (filename, MOS): used only to gate and report, never to train."""

    __tablename__ = "probe_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    path: Mapped[str] = mapped_column(String(1024))  # folder holding the probe images
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # filename -> mos
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Schedule(Base):
    """Continuous mode: start a round when enough new images arrived (a single row, id 1)."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    min_new_images: Mapped[int] = mapped_column(Integer, default=500)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(128), default="system")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
