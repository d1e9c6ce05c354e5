"""What the service says while it serves a demonstration model (app.quality.marker): /v1/models
flags the version, the console shows DEMO_NOTICE on every page, `evoq serve` logs it once."""

from __future__ import annotations

import logging

from app.quality.marker import is_demo_model
from app.scoring.serving import ModelSlot

DEMO_NOTICE = (
    "demonstration model: scores only synthetic darkening, contrast and noise; "
    "set EVOQ_BASE_MODEL to a Qwen VL checkpoint for real photos"
)


def serving_demo(slot: ModelSlot | None) -> bool:
    """Whether the version this process serves now is a demonstration model."""
    current = slot.current if slot is not None else None
    return current is not None and is_demo_model(current.checkpoint_path)


class DemoAnnouncer:
    """Logs DEMO_NOTICE the first time a demonstration model is served, and never again."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.announced = False

    def served(self, version_id: int, checkpoint_path: str) -> None:
        """Call after each swap to a version."""
        if not self.announced and is_demo_model(checkpoint_path):
            self._log.warning(DEMO_NOTICE, extra={"version": version_id})
            self.announced = True
