"""Timezone-aware UTC timestamps, the only kind the registry stores and the API answers."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """`value` with its timezone; naive values (SQLite drops the zone) are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# What API schemas use for timestamps: RFC 3339 `date-time` always carries its offset.
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
