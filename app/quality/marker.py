"""The marker file of the models app/demo builds (builtin:tiny, tiny-reasoning, demo,
demo-evolved, `evoq make-tiny-model`): its settings, and the sign of a demonstration model.

Every checkpoint trained from such a model copies the marker (loading.copy_prompt_marker), so
the round versions descended from a demo model are demonstration models too."""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "evoquality_tiny.json"


def is_demo_model(source: str | Path | None) -> bool:
    """Whether `source` is a model folder the demo builders wrote or one trained from it: such a
    model only ever learned synthetic images (or nothing), never real photos. A hub id, a
    missing folder or a real checkpoint answers False."""
    if not source:
        return False
    return (Path(source) / MARKER).is_file()


def reasoning_default(folder: str | Path) -> bool:
    """Reasoning is on for real models; tiny test models say in their marker (answer-only unless
    built with reasoning)."""
    marker = Path(folder) / MARKER
    if marker.is_file():
        return bool(json.loads(marker.read_text()).get("reasoning", False))
    return True
