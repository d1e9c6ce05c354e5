"""Named models built on first use ("builtin:<name>"), cached in a data folder.

A registry: app/quality knows no names itself; packages above it register their builders
(app/demo registers tiny, demo and demo-evolved; app/model_sources.py loads it for the entry
points), so loading a real checkpoint never imports the demo.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

PREFIX = "builtin:"
Builder = Callable[[Path], object]  # writes a complete model folder at the given path

_BUILDERS: dict[str, Builder] = {}
# How long a first use takes, printed before a build starts.
_BUILD_NOTES: dict[str, str] = {}


def register_builtin(name: str, builder: Builder, build_note: str = "") -> None:
    """Make "builtin:<name>" resolvable; the builder writes a model folder at a given path.
    `build_note` says what a first build costs (shown before it starts)."""
    _BUILDERS[name] = builder
    _BUILD_NOTES[name] = build_note


def builtin_names() -> list[str]:
    """Names that "builtin:<name>" accepts."""
    return sorted(_BUILDERS)


def pending_build(source: str, cache_dir: Path | str) -> str | None:
    """A notice when `source` is a builtin not yet built in cache_dir (None otherwise)."""
    if not source.startswith(PREFIX):
        return None
    name = source[len(PREFIX) :]
    if name not in _BUILDERS or (Path(cache_dir) / name / "config.json").is_file():
        return None
    note = f" ({_BUILD_NOTES[name]})" if _BUILD_NOTES.get(name) else ""
    return f"{source} is not built yet; building it once into {Path(cache_dir) / name}{note}"


def resolve_model_source(source: str, cache_dir: Path | str) -> str:
    """A folder for "builtin:<name>" (built once into cache_dir/<name>); other sources unchanged."""
    if not source.startswith(PREFIX):
        return source
    name = source[len(PREFIX) :]
    if name not in _BUILDERS:
        raise ValueError(f"unknown builtin model {source!r}; known: {builtin_names()}")
    target = Path(cache_dir) / name
    if (target / "config.json").is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a crash never leaves a half-written model.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        _BUILDERS[name](staging / "model")
        if (target / "config.json").is_file():  # another process finished first
            return str(target)
        if target.exists():  # an incomplete folder from an older layout or a manual copy
            shutil.rmtree(target)
        try:
            (staging / "model").rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise  # not a lost race with another builder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)
