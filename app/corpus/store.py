"""Content-addressed image files: root/ab/cd/<sha256>.<ext>, written atomically and durably."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXT = re.compile(r"[a-z0-9]{1,8}")
_TEMP_PREFIX = ".partial-"


class ImageStore:
    """Files named by their sha256; a file under its final name is always complete and synced."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, ext: str) -> Path:
        """Where the image with this digest and extension lives (whether or not it exists)."""
        _check_digest(sha256)
        if not _EXT.fullmatch(ext):
            raise ValueError(f"invalid file extension: {ext!r}")
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.{ext}"

    def find(self, sha256: str) -> Path | None:
        """The stored file with this digest, whatever its extension, or None."""
        _check_digest(sha256)
        folder = self.root / sha256[:2] / sha256[2:4]
        return next(iter(sorted(folder.glob(f"{sha256}.*"))), None)

    def put(self, data: bytes, sha256: str, ext: str) -> Path:
        """Store `data` under its digest: temp file, fsync, rename, fsync folder. Idempotent."""
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"data does not hash to {sha256}")
        final = self.path_for(sha256, ext)
        if final.is_file() and final.stat().st_size == len(data):
            return final
        _make_dirs_durably(final.parent)
        fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        _fsync_dir(final.parent)
        return final

    def delete(self, sha256: str) -> bool:
        """Remove the file with this digest; False when there was none."""
        path = self.find(sha256)
        if path is None:
            return False
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _fsync_dir(path.parent)
        return True

    def remove_partials(self) -> int:
        """Delete temp files left by a crash mid-write (call at start-up); how many went."""
        removed = 0
        for path in self.root.glob(f"*/*/{_TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed


def _check_digest(sha256: str) -> None:
    # The digest reaches us from URLs too; only this shape may become part of a path.
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex sha256: {sha256!r}")


def _make_dirs_durably(folder: Path) -> None:
    """Create `folder` and its missing parents, syncing each parent that gained an entry."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent writer made it first
            new.mkdir()
        _fsync_dir(new.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename or create inside `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
