"""Bounds of path and query parameters that reach the database.

Registry ids are 32-bit integer columns on Postgres and 64-bit on SQLite: a larger number in a
URL must be a 4xx, never an integer overflow inside the driver."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ROW_ID = 2**31 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A registry id.")]
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="Rows to skip.")]
