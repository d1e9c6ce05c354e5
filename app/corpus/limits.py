"""Upload limits: what a request, a file and an archive may contain before it is refused.

The limits are settings (their type lives in app/settings_types.py); this module reads them.
"""

from __future__ import annotations

from app.settings import Settings
from app.settings_types import MiB, UploadLimits

__all__ = ["MiB", "UploadLimits", "limits_from_settings"]


def limits_from_settings(settings: Settings) -> UploadLimits:
    """The upload limits configured in the service settings."""
    return UploadLimits(**{name: getattr(settings, name) for name in UploadLimits.model_fields})
