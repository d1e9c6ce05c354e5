"""The demo's named models, registered into app.quality's builtin registry on import."""

from __future__ import annotations

from pathlib import Path

from app.demo.demo_bundle import build_or_unpack
from app.demo.reasoning_prior import build_reasoning_model
from app.demo.tiny import build_tiny_model
from app.quality.builtins import Builder, register_builtin


def _demo_builder(function: str) -> Builder:
    """A builder from app.demo.demo, imported on use (it pulls in TRL and the round code)."""

    def build(path: Path) -> object:
        from app.demo import demo

        return getattr(demo, function)(path)

    return build


register_builtin(
    "tiny", lambda path: build_tiny_model(path, vocab="small", seed=0), "a few seconds"
)
# The faithful reasoning fixture (issue 26): Qwen's vocabulary and file layout, a format prior.
register_builtin(
    "tiny-reasoning",
    lambda path: build_reasoning_model(path, seed=0),
    "applies the shipped prior in seconds; without it, trains for about 2 minutes",
)
# The offline demo (issue 7): tiny model + weak prior, and the same after evolution rounds.
register_builtin(
    "demo",
    _demo_builder("build_demo_base"),
    "trains the weak prior: about 5 minutes on 2 CPU cores",
)
register_builtin(
    "demo-evolved",
    lambda path: build_or_unpack(path),
    "unpacks the shipped archive in seconds; without it, builds for 9 to 15 minutes",
)
