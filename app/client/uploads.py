"""The files of a request: parts read on send, folders walked, uploads cut into batches that
fit the server's limits, and the batches' answers merged."""

from __future__ import annotations

import io
import mimetypes
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.corpus.limits import UploadLimits
from app.corpus.schemas import FileResult, UploadResponse

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".zip"})
# Room for multipart headers and form fields on top of the file bytes of one request.
_MULTIPART_SLACK = 64 * 1024


@dataclass
class Part:
    """One file of a request: bytes in memory, or a file read only when its batch is sent."""

    name: str
    data: bytes | None = None
    path: Path | None = None
    images: int = 1  # a zip counts one per member against max_files_per_request

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


def to_part(item: Any, index: int) -> Part:
    """One image input (path, bytes, (name, bytes) or PIL image) as a part."""
    if isinstance(item, str | Path):
        path = Path(item)
        return Part(path.name, path=path)
    if isinstance(item, bytes | bytearray):
        return Part(f"image-{index}.bin", bytes(item))
    if isinstance(item, tuple) and len(item) == 2:
        return Part(str(item[0]), bytes(item[1]))
    if hasattr(item, "save"):  # a PIL image
        buffer = io.BytesIO()
        item.save(buffer, format="PNG")
        return Part(f"image-{index}.png", buffer.getvalue())
    raise TypeError(f"cannot send {type(item).__name__} as an image")


def multipart(parts: Sequence[Part]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The parts as httpx `files`, read now."""
    return [
        ("files", (p.name, p.read(), mimetypes.guess_type(p.name)[0] or "application/octet-stream"))
        for p in parts
    ]


def image_files(paths: Iterable[str | Path]) -> Iterator[tuple[str, Path]]:
    """(label, path) of files named, and of image or .zip files under folders (recursively,
    sorted; labelled by their path inside the folder)."""
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            for file in sorted(p for p in found if p.is_file()):
                yield file.relative_to(path).as_posix(), file
        else:
            yield path.name, path


def expand(images: Any) -> list[Any]:
    """One image input or a sequence of them, folders replaced by their image files' bytes."""
    if isinstance(images, str | Path | bytes | bytearray | tuple) or hasattr(images, "save"):
        images = [images]
    out: list[Any] = []
    for item in images:
        if isinstance(item, str | Path) and Path(item).is_dir():
            found = image_files([item])
            out.extend((name, p.read_bytes()) for name, p in found if p.suffix.lower() != ".zip")
        else:
            out.append(item)
    return out


def _zip_members(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            return max(1, sum(not i.is_dir() for i in archive.infolist()))
    except (OSError, zipfile.BadZipFile):
        return 1  # the server rejects it with the reason


def plan_batches(parts: Sequence[Part], limits: UploadLimits) -> list[list[Part]]:
    """Consecutive groups that each fit one request: at most `max_files_per_request` images
    (zip members counted) and `max_request_bytes` bytes. A part too large for any request goes
    alone, so the server names it in its answer."""
    budget = max(1, limits.max_request_bytes - _MULTIPART_SLACK)
    batches: list[list[Part]] = []
    current: list[Part] = []
    size = count = 0
    for part in parts:
        nbytes = part.size + len(part.name) + 256
        if current and (
            size + nbytes > budget or count + part.images > limits.max_files_per_request
        ):
            batches.append(current)
            current, size, count = [], 0, 0
        current.append(part)
        size += nbytes
        count += part.images
    if current:
        batches.append(current)
    return batches


def upload_parts(paths: Iterable[str | Path]) -> list[Part]:
    """The files an upload sends, zips counted by their members."""
    return [
        Part(name, path=path, images=_zip_members(path) if path.suffix.lower() == ".zip" else 1)
        for name, path in image_files(paths)
    ]


def merge(responses: Sequence[UploadResponse]) -> UploadResponse:
    """The answers of an upload's batches as one answer."""
    results: list[FileResult] = [r for resp in responses for r in resp.results]
    return UploadResponse(
        results=results,
        stored=sum(r.stored for r in responses),
        duplicates=sum(r.duplicates for r in responses),
        rejected=sum(r.rejected for r in responses),
    )
