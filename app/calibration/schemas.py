"""Pydantic shapes of the score-scale API: anchor sets and version maps."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.timeutil import UtcDatetime


class CalibrationOut(BaseModel):
    """Summary of a version's map onto the reference scale (fitted on anchor scores in the
    serving mode, applied to every mode's scores alike)."""

    model_config = ConfigDict(from_attributes=True)

    reference_version_id: int = Field(description="The version whose scale scores are put on.")
    anchor_set_id: int = Field(description="The anchor set the map was fitted on.")
    method: str = Field(description="identity (the reference itself) or isotonic.")
    anchors: int = Field(description="Matched anchors the map was fitted on.")
    residual: float = Field(description="Mean absolute error on the anchors after the map.")
    rmse: float = Field(description="Root-mean-square error on the anchors after the map.")
    raw_drift: float | None = Field(
        description="Mean absolute change of raw anchor scores from the parent, before the map."
    )
    created_at: UtcDatetime


class AnchorOut(BaseModel):
    """One anchor and its target on the reference scale."""

    model_config = ConfigDict(from_attributes=True)

    idx: int
    sha256: str
    target: float


class AnchorSetOut(BaseModel):
    """A frozen anchor set (the newest is current; older ones are the history)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    reference_version_id: int
    scored_by_version_id: int = Field(description="The version that scored the targets.")
    source: str = Field(description="synthetic, corpus (a seeded sample), upload or sha256.")
    size: int
    seed: int | None
    actor: str
    reason: str
    created_at: UtcDatetime


class AnchorsOut(BaseModel):
    """The current anchor set with its anchors, and every set frozen so far (newest first)."""

    current: AnchorSetOut | None
    anchors: list[AnchorOut]
    history: list[AnchorSetOut]
