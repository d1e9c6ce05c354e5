"""Pydantic shapes of the corpus API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.timeutil import UtcDatetime


class FileResult(BaseModel):
    """What happened to one uploaded file or archive member."""

    filename: str = Field(
        description="Client file name, or `archive.zip:member` for archive members."
    )
    status: Literal["stored", "duplicate", "rejected"]
    sha256: str | None = Field(None, description="sha256 of the file's bytes (stored/duplicate).")
    duplicate_of: str | None = Field(
        None,
        description="For duplicates: what the identical bytes (same sha256) match, an image "
        "already in the corpus or an earlier file of this request.",
    )
    reason: str | None = Field(None, description="For rejections: a stable machine-readable code.")
    detail: str | None = Field(None, description="For rejections: the problem in words.")


class UploadResponse(BaseModel):
    """Per-file results in upload order, and counts."""

    results: list[FileResult]
    stored: int
    duplicates: int
    rejected: int


class ImageOut(BaseModel):
    """A stored corpus image."""

    model_config = ConfigDict(from_attributes=True)

    sha256: str
    width: int
    height: int
    format: str
    bytes: int
    source: str
    original_name: str | None
    train_opt_out: bool
    created_at: UtcDatetime


class ImagePatch(BaseModel):
    """Changes to a stored image."""

    model_config = ConfigDict(extra="forbid")

    train_opt_out: bool = Field(description="Keep the image out of training rounds.")


class ImagePage(BaseModel):
    """One page of corpus images, newest first."""

    items: list[ImageOut]
    total: int
    offset: int
    limit: int


class CorpusStats(BaseModel):
    """Totals of the corpus."""

    images: int
    bytes: int
    train_opt_out: int = Field(description="Images excluded from training by their owner.")
    since_last_round: int = Field(description="Images that arrived after the last round started.")
    last_round_at: UtcDatetime | None
