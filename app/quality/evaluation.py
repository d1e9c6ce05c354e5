"""Measure a model against a labelled set: read a filename,mos CSV, score, correlate, plot."""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from app.quality import metrics

if TYPE_CHECKING:
    from app.quality.model import QualityModel

__all__ = [
    "EvalReport",
    "LabelledImage",
    "evaluate",
    "format_report",
    "per_image_rows",
    "read_labels",
    "scatter_plot",
    "subset",
]


@dataclass
class LabelledImage:
    """One row of a labels CSV: an image file and its mean opinion score (higher = better)."""

    filename: str
    path: Path
    mos: float


@dataclass
class EvalReport:
    """Correlations of predicted scores with MOS, and every row that could not be used."""

    n: int
    srcc: float
    plcc: float
    plcc_logistic: float
    krcc: float
    logistic_fit_ok: bool
    mode: str
    filenames: list[str] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    mos: list[float] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (filename, reason)

    def metrics(self) -> dict[str, float | int]:
        """The numbers alone, e.g. for a registry record."""
        keys = ("n", "srcc", "plcc", "plcc_logistic", "krcc")
        return {k: getattr(self, k) for k in keys}


def read_labels(
    labels_csv: Path | str, images_dir: Path | str
) -> tuple[list[LabelledImage], list[tuple[str, str]]]:
    """Rows with columns filename,mos (others ignored); returns (usable rows, skipped rows).

    A filename listed again is reported as skipped and scored once (its first row counts).
    Raises FileNotFoundError for a missing CSV and ValueError for one without filename,mos."""
    root = Path(images_dir)
    path = Path(labels_csv)
    if not path.is_file():
        raise FileNotFoundError(f"labels file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"filename", "mos"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"{labels_csv}: missing column(s) {sorted(missing)}; need a header line with "
                f"filename,mos (found: {','.join(reader.fieldnames or []) or 'nothing'})"
            )
        rows, skipped = [], []
        first_line: dict[str, int] = {}
        for line, row in enumerate(reader, start=2):
            name = (row["filename"] or "").strip()
            try:
                mos = float(row["mos"])
            except (TypeError, ValueError):
                skipped.append((name or f"line {line}", f"MOS {row['mos']!r} is not a number"))
                continue
            if not name or not math.isfinite(mos):
                skipped.append((name or f"line {line}", "empty filename or non-finite MOS"))
                continue
            if name in first_line:
                skipped.append(
                    (
                        name,
                        f"duplicate row (line {line}); scored once, with line {first_line[name]}",
                    )
                )
                continue
            first_line[name] = line
            rows.append(LabelledImage(filename=name, path=root / name, mos=mos))
    return rows, skipped


def subset(items: Sequence[LabelledImage], limit: int | None, seed: int) -> list[LabelledImage]:
    """At most `limit` rows, drawn at random with `seed` and kept in file order (all if None)."""
    if limit is None or limit >= len(items):
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def _open(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
        return img.convert("RGB")


def _load_batch(
    batch: Sequence[LabelledImage], skip: list[tuple[str, str]]
) -> list[tuple[LabelledImage, Image.Image]]:
    loaded = []
    for item in batch:
        try:
            loaded.append((item, _open(item.path)))
        except FileNotFoundError:
            skip.append((item.filename, "file not found"))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            skip.append((item.filename, f"unreadable image: {exc}"))
    return loaded


def evaluate(
    model: QualityModel,
    items: Sequence[LabelledImage],
    *,
    mode: str = "fast",
    n: int = 8,
    batch_size: int = 32,
    seed: int | None = 0,
    skipped: Sequence[tuple[str, str]] = (),
    on_progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Score every readable image and correlate with MOS; unreadable or unscored ones are skipped
    with their reason (never silently dropped). Images are read one batch at a time, so memory
    does not grow with the set; `on_progress(k)` after each batch of k rows."""
    if n < 1:
        raise ValueError(f"samples per image must be at least 1, got {n}")
    skip = list(skipped)
    names, pred, stds, mos = [], [], [], []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        chunk = _load_batch(batch, skip)
        if chunk:
            results = model.score([img for _, img in chunk], mode=mode, n=n, seed=seed)
            for (item, _), res in zip(chunk, results, strict=True):
                if res.score is None:
                    skip.append((item.filename, f"no parsable score in {res.n} responses"))
                    continue
                names.append(item.filename)
                pred.append(float(res.score))
                stds.append(float(res.std))
                mos.append(item.mos)
        if on_progress:
            on_progress(len(batch))
    summ = metrics.summary(pred, mos) if len(pred) >= 2 else _empty_summary(len(pred))
    return EvalReport(
        n=int(summ["n"]),
        srcc=float(summ["srcc"]),
        plcc=float(summ["plcc"]),
        plcc_logistic=float(summ["plcc_logistic"]),
        krcc=float(summ["krcc"]),
        logistic_fit_ok=bool(summ["logistic_fit_ok"]),
        mode=mode,
        filenames=names,
        predicted=pred,
        std=stds,
        mos=mos,
        skipped=skip,
    )


def per_image_rows(report: EvalReport) -> list[dict[str, object]]:
    """One record per scored image: filename, mos, score, std."""
    return [
        {"filename": name, "mos": m, "score": p, "std": s}
        for name, m, p, s in zip(
            report.filenames, report.mos, report.predicted, report.std, strict=True
        )
    ]


def _empty_summary(n: int) -> dict[str, float | int | bool]:
    nan = math.nan
    return {"n": n, "srcc": nan, "krcc": nan, "plcc": nan, "plcc_logistic": nan,
            "logistic_fit_ok": False}  # fmt: skip


def format_report(report: EvalReport) -> str:
    """Human-readable summary: the metrics, then each skipped file with its reason."""
    lines = [
        f"n={report.n}  mode={report.mode}",
        f"SRCC={report.srcc:.4f}  PLCC={report.plcc:.4f}  "
        f"PLCC(logistic)={report.plcc_logistic:.4f}"
        f"{'' if report.logistic_fit_ok else ' (fit failed: raw)'}  KRCC={report.krcc:.4f}",
    ]
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} file(s):")
        lines += [f"  {name}: {reason}" for name, reason in report.skipped]
    return "\n".join(lines)


def scatter_plot(report: EvalReport, path: Path | str, title: str = "") -> Path:
    """Write a PNG scatter of predicted score against MOS (with the logistic fit when it exists)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=120)
    ax.scatter(report.predicted, report.mos, s=10, alpha=0.6)
    params = metrics.fit_logistic4(report.predicted, report.mos) if report.n >= 4 else None
    if params is not None:
        xs = np.linspace(min(report.predicted), max(report.predicted), 200)
        ax.plot(xs, metrics.logistic4(xs, *params), color="C1", label="logistic fit")
        ax.legend(loc="lower right")
    ax.set_xlabel(f"predicted score ({report.mode})")
    ax.set_ylabel("MOS")
    ax.set_title(
        (title + "\n" if title else "")
        + f"n={report.n}  SRCC={report.srcc:.3f}  PLCC={report.plcc:.3f}",
        fontsize=9,
    )
    return save_figure(fig, path)


def save_figure(fig, path: Path | str) -> Path:  # noqa: ANN001 - a matplotlib Figure
    """Write a figure as PNG (creating the folder) and release it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
