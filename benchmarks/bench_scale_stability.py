"""Per-image score stability across model versions, raw vs calibrated.

Runs two real evolution rounds on the demo pool (the demo's round code: voting, TRL GRPO) from
the shipped demo base, calibrates every version on the service's synthetic anchor set (the
base is the reference scale), then scores the held-out labelled eval split with every version
and prints, per version: SRCC against MOS (raw and calibrated), the mean absolute change of
scores from the previous version (raw vs calibrated; the images did not change), and the share
of images crossing a fixed threshold between versions.

Goals (issue 11): calibrated drift at most half the raw drift, SRCC unchanged by calibration
(within 0.005), threshold crossings halved.

    OMP_NUM_THREADS=1 python benchmarks/bench_scale_stability.py   # ~5-8 minutes of CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from app.calibration.anchors import synthetic_images
from app.demo.demo import IMAGE_PIXELS, DemoConfig, run_demo
from app.demo.demo_bundle import build_or_unpack
from app.demo.synthetic import generate
from app.quality.calibration import ScoreMap, fit, mean_abs_change
from app.quality.loading import load_model
from app.quality.metrics import srcc


def _fast_scores(checkpoint: Path, images: list) -> np.ndarray:
    qm = load_model(
        str(checkpoint), device="cpu", dtype="float32", max_pixels=IMAGE_PIXELS, batch_size=32,
        reasoning=False,
    )  # fmt: skip
    return np.array([r.score for r in qm.score(images, mode="fast")])


def _crossings(before: np.ndarray, after: np.ndarray, threshold: float) -> float:
    return float(np.mean((before >= threshold) != (after >= threshold)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--anchors", type=int, default=256, help="EVOQ_ANCHOR_SET_SIZE")
    parser.add_argument("--anchor-seed", type=int, default=11, help="EVOQ_ANCHOR_SEED")
    parser.add_argument("--threshold", type=float, default=2.5)
    parser.add_argument("--work", type=Path, default=None, help="Keep checkpoints here.")
    parser.add_argument(
        "--reuse", action="store_true", help="Measure the checkpoints of an earlier --work run."
    )
    parser.add_argument(
        "--reference", type=int, default=0, help="Version whose scale is the reference."
    )
    args = parser.parse_args()

    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="evoq-scale-"))
    config = DemoConfig(rounds=args.rounds, eval_images=64, eval_pairs=100, eval_samples=2)
    base = work / "demo-evolved" / "lineage" / "round-0"  # the bundle's round 0: builtin:demo
    checkpoints = [base] + [work / "demo" / f"round-{r}" for r in range(1, args.rounds + 1)]
    if not (args.reuse and all((c / "config.json").is_file() for c in checkpoints)):
        build_or_unpack(work / "demo-evolved")
        checkpoints = run_demo(config, work_dir=work / "demo", base_dir=base).checkpoints
    held_out = generate(dataclasses.replace(config.synthetic, seed=config.seed))["eval"]
    mos = np.array([item.mos for item in held_out])
    anchors = synthetic_images(args.anchors, args.anchor_seed)

    rows, previous = [], None
    reference_anchor_scores = _fast_scores(checkpoints[args.reference], anchors)
    for version, checkpoint in enumerate(checkpoints):
        if version < args.reference:
            continue
        if version == args.reference:
            score_map, residual = ScoreMap.identity(), 0.0
        else:
            calibration = fit(_fast_scores(checkpoint, anchors), reference_anchor_scores)
            score_map, residual = calibration.map, calibration.residual
        raw = _fast_scores(checkpoint, [item.image for item in held_out])
        calibrated = score_map.apply(raw)
        row = {
            "version": version,
            "srcc_raw": srcc(raw, mos),
            "srcc_cal": srcc(calibrated, mos),
            "residual": residual,
            "raw_range": f"{raw.min():.2f}-{raw.max():.2f}",
        }
        if previous is not None:
            row |= {
                "drift_raw": mean_abs_change(previous[0], raw),
                "drift_cal": mean_abs_change(previous[1], calibrated),
                "cross_raw": _crossings(previous[0], raw, args.threshold),
                "cross_cal": _crossings(previous[1], calibrated, args.threshold),
            }
        rows.append(row)
        previous = (raw, calibrated)

    print(f"\n{len(held_out)} held-out labelled images, {args.anchors} synthetic anchors, "
          f"reference version {args.reference}, threshold {args.threshold}, "
          f"{time.perf_counter() - started:.0f} s\n")  # fmt: skip
    print(_table(rows, args.threshold))
    print("\n" + _goals(rows[1:]))


COLUMNS = (
    ("version", "version"),
    ("srcc_raw", "SRCC raw"),
    ("srcc_cal", "SRCC calibrated"),
    ("residual", "fit residual"),
    ("raw_range", "raw range"),
    ("drift_raw", "drift raw"),
    ("drift_cal", "drift calibrated"),
    ("cross_raw", "crossing {threshold} raw"),
    ("cross_cal", "crossing {threshold} calibrated"),
)


def _cell(value: object) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(rows: list[dict], threshold: float) -> str:
    titles = (title.format(threshold=threshold) for _, title in COLUMNS)
    lines = ["| " + " | ".join(titles) + " |"]
    lines.append("|" + "---|" * len(COLUMNS))
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def _goals(later: list[dict]) -> str:
    drift = all(r["drift_cal"] <= 0.5 * r["drift_raw"] for r in later)
    srcc_kept = all(abs(r["srcc_cal"] - r["srcc_raw"]) <= 0.005 for r in later)
    crossings = all(r["cross_cal"] <= 0.5 * r["cross_raw"] for r in later)
    return (
        f"calibrated drift <= half raw drift: {'met' if drift else 'NOT met'}; "
        f"SRCC unchanged within 0.005: {'met' if srcc_kept else 'NOT met'}; "
        f"threshold crossings halved: {'met' if crossings else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
