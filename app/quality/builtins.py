"""Named models built on first use ("builtin:tiny"), cached in a data folder."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from app.demo.demo_bundle import build_or_unpack
from app.demo.tiny import build_tiny_model

PREFIX = "builtin:"
Builder = Callable[[Path], object]  # writes a complete model folder at the given path


def _demo_builder(function: str) -> Builder:
    """A builder from app.demo.demo, imported on use (it pulls in TRL and the round code)."""

    def build(path: Path) -> object:
        from app.demo import demo

        return getattr(demo, function)(path)

    return build


_BUILDERS: dict[str, Builder] = {
    "tiny": lambda path: build_tiny_model(path, vocab="small", seed=0),
    # The offline demo (issue 7): tiny model + weak prior, and the same after evolution rounds.
    "demo": _demo_builder("build_demo_base"),
    "demo-evolved": lambda path: build_or_unpack(path),
}


def register_builtin(name: str, builder: Builder) -> None:
    """Make "builtin:<name>" resolvable; the builder writes a model folder at a given path."""
    _BUILDERS[name] = builder


def builtin_names() -> list[str]:
    """Names that "builtin:<name>" accepts."""
    return sorted(_BUILDERS)


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
