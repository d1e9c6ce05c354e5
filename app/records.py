"""Per-image result files: CSV or JSON lines, chosen by the file's suffix."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

SUFFIXES = (".csv", ".jsonl")


def check_suffix(path: Path | str) -> Path:
    """The path, or ValueError when its suffix is neither .csv nor .jsonl."""
    out = Path(path)
    if out.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{out}: the output must end in .csv or .jsonl")
    return out


def write_records(path: Path | str, records: Iterable[dict], columns: Sequence[str]) -> Path:
    """Write one row (CSV) or one JSON object per line (JSONL) per record, in `columns` order."""
    out = check_suffix(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        if out.suffix.lower() == ".csv":
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)
        else:
            for record in records:
                fh.write(json.dumps({c: record.get(c) for c in columns}) + "\n")
    return out
