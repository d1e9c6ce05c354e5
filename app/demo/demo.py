"""The offline learning demo: a tiny Qwen2.5-VL with a weak prior evolves on unlabelled images.

builtin:demo is the tiny model after a brief supervised prior on the synthetic prior split:
it compares better than chance and answers in the scoring format, but its scoring targets
are random digits, so any scoring skill must come from evolution. `run_demo` then runs
evolution rounds through the real round code (voting, TRL GRPO) on the pool split and
measures every round on the eval split against the hidden distortion levels. The settings are
in config.py, the prior in prior.py, the measuring, table and plot in measure.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from app.demo.config import IMAGE_PIXELS, DemoConfig, PriorConfig
from app.demo.measure import (
    COLUMNS,
    RoundRow,
    format_table,
    level_pairs,
    measure,
    plot_rows,
    pseudo_label_accuracy,
    same_reference_accuracy,
)
from app.demo.prior import build_demo_base, train_prior
from app.demo.synthetic import SyntheticImage, generate, write_synthetic
from app.quality.augment import AugmentConfig, variant_loader
from app.quality.evolution import RoundConfig, run_round
from app.quality.grpo import GRPORoundConfig
from app.quality.loading import load_model
from app.quality.pairs import sample_pairs
from app.quality.refresh import RefreshConfig, refresh_comparisons
from app.quality.voting import VoteConfig, VoteResult, vote_all

__all__ = [
    "COLUMNS",
    "IMAGE_PIXELS",
    "CheckpointEvent",
    "DemoConfig",
    "DemoResult",
    "PriorConfig",
    "RoundRow",
    "build_demo_base",
    "build_demo_evolved",
    "format_table",
    "measure",
    "plot_rows",
    "pseudo_label_accuracy",
    "run_demo",
    "same_reference_accuracy",
    "train_prior",
]


@dataclass
class CheckpointEvent:
    """A model version the demo produced: round 0 is the base, parent is None for it."""

    round: int
    path: Path
    parent: Path | None
    metrics: dict[str, Any]


@dataclass
class DemoResult:
    """The table rows, the checkpoints of every round (0 = base) and timings in seconds."""

    rows: list[RoundRow]
    checkpoints: list[Path]
    timings: dict[str, float]
    round_metrics: list[dict[str, Any]] = field(default_factory=list)


# ---- the rounds ---------------------------------------------------------------------------


def _round_config(cfg: DemoConfig, round_index: int = 1) -> RoundConfig:
    augment = cfg.augment if round_index >= cfg.augment_from_round else AugmentConfig()
    steps = cfg.grpo_steps if round_index == 1 else cfg.later_grpo_steps or cfg.grpo_steps
    return RoundConfig(
        n_pairs=cfg.n_pairs,
        holdout_fraction=0.0,  # the demo measures on its own eval split
        vote=VoteConfig(
            k=cfg.votes,
            mode="sampled",
            reasoning=False,
            label=cfg.label if round_index == 1 else cfg.later_label,
            min_confidence=cfg.min_confidence,
        ),  # fmt: skip
        augment=augment,
        grpo=GRPORoundConfig(
            num_generations=cfg.num_generations,
            learning_rate=cfg.learning_rate * cfg.round_lr_decay ** (round_index - 1),
            beta=cfg.beta,
            pairs_per_step=cfg.pairs_per_step,
            max_steps=steps,
            reasoning=False,  # the prior taught the answer-only prompts
            device="cpu",
        ),
        refresh=RefreshConfig(
            steps=cfg.refresh_steps if round_index > 1 else 0,
            learning_rate=cfg.refresh_lr,
            keep_scores=cfg.refresh_keep_scores,
            pairs_per_step=cfg.prior.compare_per_step,
            max_grad_norm=cfg.prior.max_grad_norm,
        ),
        device="cpu",
        max_pixels=IMAGE_PIXELS,
        batch_size=cfg.batch_size,
    )


def _round_seed(cfg: DemoConfig, r: int) -> int:
    return cfg.seed * 1000 + r


def run_demo(
    config: DemoConfig | None = None,
    work_dir: str | Path | None = None,
    base_dir: str | Path | None = None,
    on_checkpoint: Callable[[CheckpointEvent], None] | None = None,
    progress: bool = True,
) -> DemoResult:
    """Build (or take) the demo base, run the rounds on the pool, measure rounds 0..R on eval.

    Checkpoints go to work_dir/round-<r>; `on_checkpoint` sees each version once its row is
    complete (after it voted the pool pairs of the next round), e.g. to record lineage.
    """
    cfg = config or DemoConfig()
    work = Path(work_dir or tempfile.mkdtemp(prefix="evoq-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    synth = dataclasses.replace(cfg.synthetic, seed=cfg.seed)
    data_dir = work / "data"
    data = generate(synth)
    write_synthetic(data_dir, data=data)  # the round code reads the pool from files
    pool_paths = [data_dir / "pool" / it.filename for it in data["pool"]]
    level_of = {str(p): it.level for p, it in zip(pool_paths, data["pool"], strict=True)}
    eval_items = data["eval"][: cfg.eval_images] if cfg.eval_images else data["eval"]
    eval_pairs = level_pairs(eval_items, cfg.eval_pairs, seed=cfg.seed)
    timings["data_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    base = Path(base_dir) if base_dir else work / "round-0"
    if base_dir and not (base / "config.json").is_file():
        raise FileNotFoundError(f"no model in {base}")
    if not (base / "config.json").is_file():
        shutil.rmtree(base, ignore_errors=True)  # a half-written prior of an earlier run
        build_demo_base(base, cfg, progress=progress)
    timings["prior_s"] = time.perf_counter() - t0

    checkpoints: list[Path] = [base]
    rows: list[RoundRow] = []
    round_metrics: list[dict[str, Any]] = []
    bar = tqdm(total=cfg.rounds + 1, desc="demo rounds", disable=not progress, unit="model")
    previous: tuple[list[VoteResult], Callable[[Any], Any]] | None = None
    for r in range(cfg.rounds + 1):
        t0 = time.perf_counter()
        qm = load_model(
            str(checkpoints[r]), device="cpu", dtype="float32", max_pixels=IMAGE_PIXELS,
            batch_size=cfg.batch_size, reasoning=False,
        )  # fmt: skip
        numbers = measure(qm, eval_items, eval_pairs, cfg)
        seed = _round_seed(cfg, r + 1)
        next_cfg = _round_config(cfg, r + 1)
        label_pool = cfg.pool_labels and (r == cfg.rounds or next_cfg.augment.enabled)
        if label_pool and r < cfg.rounds and next_cfg.refresh.enabled and previous is not None:
            # The pool-label columns report what this round votes with: the refreshed model
            # (the same weights run_round refreshes to, from the same labels and seed).
            del qm
            voter = work / f".round-{r + 1}-labels"
            shutil.rmtree(voter, ignore_errors=True)
            refresh_comparisons(
                checkpoints[r], voter, *previous, next_cfg.refresh, seed=seed,
                max_pixels=IMAGE_PIXELS,
            )  # fmt: skip
            qm = load_model(
                str(voter), device="cpu", dtype="float32", max_pixels=IMAGE_PIXELS,
                batch_size=cfg.batch_size, reasoning=False,
            )  # fmt: skip
            shutil.rmtree(voter, ignore_errors=True)
        pool_votes = None
        if label_pool:
            # Pseudo-labels on stored pool pairs, comparable across rounds: the last model's,
            # or this model's when its round votes on an augmented pool instead.
            pairs = sample_pairs([str(p) for p in pool_paths], cfg.n_pairs, 0.0, seed)
            loader = _pool_loader(data["pool"], pool_paths)
            pool_votes = vote_all(qm, pairs, loader, next_cfg.vote, seed)
        del qm
        timings[f"measure_{r}_s"] = time.perf_counter() - t0
        if r < cfg.rounds:  # rows 0..R-1 report the votes that actually trained the next round
            t0 = time.perf_counter()
            out = work / f"round-{r + 1}"
            if out.exists():
                shutil.rmtree(out)
            result = run_round(
                checkpoints[r], pool_paths, next_cfg, out, seed=seed,
                on_progress=_stage_bars(r + 1, progress), parent_labels=previous,
            )  # fmt: skip
            loader = _pool_loader(data["pool"], pool_paths)
            if next_cfg.augment.enabled:
                loader = variant_loader(loader, seed)
            previous = (result.votes, loader)
            timings[f"round_{r + 1}_s"] = time.perf_counter() - t0
            round_metrics.append(_compact(result.metrics))
            same_ref, n_same = same_reference_accuracy(result.votes)
            round_metrics[-1]["same_reference"] = {"accuracy": same_ref, "pairs": n_same}
            checkpoints.append(out)
            pool_votes = pool_votes or result.votes
        k1, k32 = pseudo_label_accuracy(pool_votes or [], lambda key: level_of[str(key)])
        kept = ("compare_acc", "srcc_sampled", "plcc_sampled", "srcc_fast", "score_std")
        same = same_ref if r < cfg.rounds and n_same else math.nan
        rows.append(RoundRow(r, k1, k32, **{k: numbers[k] for k in kept}, same_ref_acc_k32=same))
        if on_checkpoint is not None:
            event_metrics = {
                **dataclasses.asdict(rows[-1]),
                "parse_rate": numbers["sampled_parse_rate"],
            }
            if r:
                event_metrics["round"] = round_metrics[r - 1]
            on_checkpoint(
                CheckpointEvent(r, checkpoints[r], checkpoints[r - 1] if r else None, event_metrics)
            )
        bar.update(1)
    bar.close()
    return DemoResult(rows, checkpoints, timings, round_metrics)


def _stage_bars(round_index: int, enabled: bool) -> Callable[[str, int, int], None]:
    """run_round's progress callback as one tqdm bar per stage (vote, train)."""
    bars: dict[str, Any] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(
                total=total, desc=f"round {round_index} {stage}", disable=not enabled
            )
        bar = bars[stage]
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return report


def _pool_loader(items: Sequence[SyntheticImage], paths: Sequence[Path]) -> Callable[[Any], Any]:
    by_path = {str(p): it.image for p, it in zip(paths, items, strict=True)}
    return lambda key: by_path[str(key)]


def _compact(round_metrics: dict[str, Any]) -> dict[str, Any]:
    """Round metrics without the per-step series (kept small for lineage files)."""
    train = {k: v for k, v in round_metrics.get("train", {}).items() if k != "per_step"}
    return {**{k: v for k, v in round_metrics.items() if k != "train"}, "train": train}


# ---- builtin:demo-evolved ------------------------------------------------------------------


def build_demo_evolved(
    path: str | Path,
    config: DemoConfig | None = None,
    progress: bool = True,
    on_checkpoint: Callable[[CheckpointEvent], None] | None = None,
    base_dir: str | Path | None = None,
) -> Path:
    """Write builtin:demo-evolved: the demo base after its rounds, with lineage.json.

    The folder holds the final model; lineage/round-<r>/ keeps every earlier checkpoint so a
    registry can record the whole lineage (base -> round 1 -> ...).
    """
    cfg = config or DemoConfig()
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix=".demo-evolved.", dir=path.parent) as tmp:
        result = run_demo(
            cfg, work_dir=tmp, base_dir=base_dir, on_checkpoint=on_checkpoint, progress=progress
        )
        final = result.checkpoints[-1]
        shutil.copytree(final, path)
        lineage_dir = path / "lineage"
        for r, ckpt in enumerate(result.checkpoints[:-1]):
            shutil.copytree(ckpt, lineage_dir / f"round-{r}")
    lineage = {
        "base": "builtin:demo",
        "rounds": cfg.rounds,
        "config": dataclasses.asdict(cfg),
        "table": [dataclasses.asdict(row) for row in result.rows],
        "checkpoints": [f"lineage/round-{r}" for r in range(cfg.rounds)] + ["."],
        "round_metrics": result.round_metrics,
        "timings": result.timings,
    }
    (path / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str) + "\n")
    return path
