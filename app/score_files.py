"""`evoq score`: score image files and folders through a server (the client) or a local model,
skipping unreadable files with the reason."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.client import ApiError, Client, image_files

if TYPE_CHECKING:
    from app.quality.model import QualityModel

COLUMNS = ("filename", "sha256", "score", "std", "version")
Progress = Callable[[int], None]


@dataclass
class Scored:
    """One output row."""

    filename: str
    sha256: str
    score: float | None
    std: float
    version: str


@dataclass
class Outcome:
    """Rows scored, and files skipped with the reason."""

    rows: list[Scored]
    skipped: list[tuple[str, str]]

    def records(self) -> list[dict]:
        """The rows as dicts in COLUMNS order."""
        return [asdict(r) for r in self.rows]


def find_images(
    paths: Iterable[str | Path],
) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(label, path) of files named and of image files under folders (recursively), and the
    paths that do not exist. Named files are kept whatever their suffix: reading says why not."""
    found, missing = [], []
    for item in paths:
        path = Path(item)
        if not path.exists():
            missing.append((str(item), "no such file or folder"))
        elif path.is_dir():
            found += [(str(f), f) for _, f in image_files([path]) if f.suffix.lower() != ".zip"]
        else:
            found.append((str(path), path))
    return found, missing


def _read(files: Sequence[tuple[str, Path]], skipped: list) -> list[tuple[str, bytes]]:
    out = []
    for name, path in files:
        try:
            out.append((name, path.read_bytes()))
        except OSError as exc:
            skipped.append((name, f"unreadable: {exc.strerror or exc}"))
    return out


def _batches(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def score_with_server(
    client: Client,
    files: Sequence[tuple[str, Path]],
    *,
    mode: str,
    samples: int,
    batch_size: int = 16,
    on_progress: Progress | None = None,
) -> Outcome:
    """Score through POST /v1/score. The server refuses a whole request for one bad file and
    names it: that file is skipped with the server's reason and the rest is sent again."""
    rows: list[Scored] = []
    skipped: list[tuple[str, str]] = []
    for batch in _batches(files, batch_size):
        pending = _read(batch, skipped)
        while pending:
            try:
                answer = client.score(pending, mode=mode, samples=samples)
            except ApiError as exc:
                bad = exc.body.get("filename")
                if bad not in {name for name, _ in pending}:
                    raise
                skipped.append((bad, f"{exc.code}: {exc.detail}"))
                pending = [(name, data) for name, data in pending if name != bad]
                continue
            rows += [
                Scored(r.filename, r.sha256, r.score, r.std, str(r.model_version))
                for r in answer.results
            ]
            break
        if on_progress:
            on_progress(len(batch))
    return Outcome(rows, skipped)


def score_locally(
    model: QualityModel,
    version: str,
    files: Sequence[tuple[str, Path]],
    *,
    mode: str,
    samples: int,
    seed: int | None = 0,
    batch_size: int = 16,
    on_progress: Progress | None = None,
) -> Outcome:
    """Score with a model loaded in this process, one batch of files in memory at a time."""
    from PIL import Image

    from app.quality.images import prepare_image

    rows: list[Scored] = []
    skipped: list[tuple[str, str]] = []
    for batch in _batches(files, batch_size):
        loaded = []
        for name, data in _read(batch, skipped):
            try:
                loaded.append((name, data, prepare_image(data, model.max_pixels)))
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                skipped.append((name, f"unreadable image: {exc}"))
        if loaded:
            results = model.score([img for *_, img in loaded], mode=mode, n=samples, seed=seed)
            for (name, data, _), res in zip(loaded, results, strict=True):
                digest = hashlib.sha256(data).hexdigest()
                rows.append(Scored(name, digest, res.score, res.std, version))
        if on_progress:
            on_progress(len(batch))
    return Outcome(rows, skipped)
