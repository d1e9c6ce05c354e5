"""Pydantic shapes of the registry API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.calibration.schemas import CalibrationOut
from app.timeutil import UtcDatetime


class VersionOut(BaseModel):
    """A registered checkpoint."""

    id: int
    parent_id: int | None
    round_id: int | None
    base_model: str
    checkpoint_path: str
    digest: str
    status: str = Field(description="candidate, active, retired or rejected.")
    active: bool
    demo: bool = Field(
        description="A demonstration model (builtin:tiny, tiny-reasoning, demo, demo-evolved or a "
        "version trained from one): it learned only synthetic darkening, contrast and noise, "
        "never real photos."
    )
    lineage: list[int] = Field(
        description="This version's id, then its parent's, back to the base."
    )
    metrics: dict[str, Any]
    calibration: CalibrationOut | None = Field(
        description="The version's map onto the reference score scale; null when uncalibrated "
        "(its scores are then served raw, with `scale` null)."
    )
    note: str | None
    created_at: UtcDatetime


class ActivationOut(BaseModel):
    """One entry of the append-only activation history."""

    id: int
    version_id: int
    previous_version_id: int | None
    kind: str = Field(
        "activate",
        description="activate (chosen by id) or rollback (undid the newest standing activation).",
    )
    actor: str
    reason: str
    at: UtcDatetime


class ModelsOut(BaseModel):
    """Every version, the active one, and the recent activation history."""

    active_version: int | None
    demo: bool = Field(
        description="The active version is a demonstration model: set EVOQ_BASE_MODEL to a Qwen "
        "VL checkpoint for real photos."
    )
    versions: list[VersionOut]
    activations: list[ActivationOut]


class ActivateIn(BaseModel):
    """Why an admin changes the serving version."""

    reason: str = Field("", max_length=1000)
