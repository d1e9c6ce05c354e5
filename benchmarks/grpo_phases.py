"""Where a GRPO step's time goes: generation, weight sync, rollout scoring and the update.

Wraps the trainer's methods for the life of a `with timed_phases() as phases:` block (for
benchmarks and scripts/gpu-check, never for rounds): generation is `_generate_single_turn`
less any vLLM weight sync inside it, sync is TRL's or the project's `sync_weights` wherever
it runs, scoring is the rest of `_generate_and_score_completions` (rewards, old and
reference log-probs), and the update is TRL's logged step time less all of those.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from typing import Any


def _wrap(owner: Any, name: str, totals: dict[str, float], key: str, active: set) -> Any:
    """Replace owner.name by a timer of its outermost calls (subclasses call super)."""
    original = vars(owner)[name]

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if key in active:
            return original(*args, **kwargs)
        active.add(key)
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds = time.perf_counter() - start
            totals[key] += seconds
            if key == "sync" and "generation" in active:  # TRL syncs inside or before it
                totals["sync inside generation"] += seconds
            active.discard(key)

    setattr(owner, name, timed)
    return original


@contextlib.contextmanager
def timed_phases() -> Iterator[dict[str, float]]:
    """Seconds spent in generation, sync and rollout ("rollout" includes both) while open."""
    from trl import GRPOTrainer

    from app.quality.grpo_prefix import SharedPrefixGRPOTrainer

    totals = {"generation": 0.0, "sync": 0.0, "sync inside generation": 0.0, "rollout": 0.0}
    active: set[str] = set()
    targets = [
        (GRPOTrainer, "_generate_single_turn", "generation"),
        (SharedPrefixGRPOTrainer, "_generate_single_turn", "generation"),
        (GRPOTrainer, "_generate_and_score_completions", "rollout"),
    ]
    with contextlib.suppress(ImportError):
        from trl.generation.vllm_generation import VLLMGeneration

        targets.append((VLLMGeneration, "sync_weights", "sync"))
    # The project's fixed sync (app/quality/vllm_rollouts.py), which its trainers call instead.
    with contextlib.suppress(ImportError):
        from app.quality import vllm_rollouts

        targets.append((vllm_rollouts, "sync_weights", "sync"))
    saved = [
        (owner, name, _wrap(owner, name, totals, key, active))
        for owner, name, key in targets
        if name in vars(owner)
    ]
    try:
        yield totals
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def split_step(totals: dict[str, float], step_seconds: float, steps: int) -> dict[str, float]:
    """Seconds per step: generation (without sync), sync, scoring and update."""
    generation = totals["generation"] - totals["sync inside generation"]
    outside = totals["sync"] - totals["sync inside generation"]
    scoring = totals["rollout"] - totals["generation"] - outside
    update = step_seconds * steps - totals["rollout"]
    parts = {"generation": generation, "sync": totals["sync"], "scoring": scoring}
    parts["update"] = update
    return {k: max(v, 0.0) / steps for k, v in parts.items()}
