"""Checkpoints that are complete or absent: write beside the target, digest, rename into place."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "DIGEST_FILE",
    "is_weight_file",
    "publish_checkpoint",
    "weights_digest",
    "write_atomically",
]

DIGEST_FILE = "WEIGHTS_SHA256"


def is_weight_file(path: Path) -> bool:
    """Safetensors shards, or legacy pytorch_model*.bin shards (not trainer state pickles)."""
    return path.suffix == ".safetensors" or (
        path.suffix == ".bin" and path.name.startswith(("pytorch_model", "model"))
    )


def weights_digest(folder: str | Path) -> str:
    """ "sha256:<hex>" over the weight files of a checkpoint folder (names and bytes, name order)."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_weight_file(p))
    if not files:
        raise FileNotFoundError(f"no weight files in {folder}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    # Data must reach the disk before the rename makes the folder visible as complete.
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def publish_checkpoint(tmp_folder: str | Path, final_folder: str | Path) -> str:
    """Digest a finished folder, record the digest in it, fsync, rename it into place.

    `tmp_folder` must be on the same filesystem as `final_folder` (a sibling); an existing
    `final_folder` is never overwritten. Returns the digest.
    """
    tmp_folder, final_folder = Path(tmp_folder), Path(final_folder)
    if final_folder.exists():
        raise FileExistsError(f"checkpoint {final_folder} already exists")
    digest = weights_digest(tmp_folder)
    (tmp_folder / DIGEST_FILE).write_text(digest + "\n")
    _fsync_tree(tmp_folder)
    os.rename(tmp_folder, final_folder)
    _fsync_dir(final_folder.parent)  # make the rename itself durable
    return digest


def write_atomically(target: str | Path, write: Callable[[Path], None]) -> str:
    """Call `write(staging_dir)` on a sibling of `target`, then `publish_checkpoint` it.

    The staging folder is removed if anything fails. Returns the digest.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"checkpoint {target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        write(staging)
        return publish_checkpoint(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
