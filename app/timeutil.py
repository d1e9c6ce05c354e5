"""Timezone-aware UTC timestamps, the only kind the registry stores."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.now(UTC)
