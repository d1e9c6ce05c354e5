"""ORM rows of the model registry: versions and the append-only activation history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow

VERSION_STATUSES = ("candidate", "active", "retired", "rejected")


class ModelVersion(Base):
    """A checkpoint. Immutable once written, except `status`."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    # use_alter: rounds and model_versions reference each other.
    round_id: Mapped[int | None] = mapped_column(
        ForeignKey("rounds.id", use_alter=True), nullable=True
    )
    base_model: Mapped[str] = mapped_column(String(512))
    checkpoint_path: Mapped[str] = mapped_column(String(1024))
    digest: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Activation(Base):
    """Which version served from when. Append-only: the newest row is the active version."""

    __tablename__ = "activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    previous_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    # activate (a version chosen by its id) or rollback (undoes the newest standing activation).
    kind: Mapped[str] = mapped_column(String(16), default="activate", server_default="activate")
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
