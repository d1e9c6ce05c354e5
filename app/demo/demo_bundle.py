"""The evolved demo model shipped with the package, so the embedded default serves in seconds.

`builtin:demo-evolved` takes 9 to 15 minutes to build on 2 CPU cores (prior, two rounds of
voting and GRPO; docs/demo.md). The package ships the folder `evoq demo` builds with seed 0 as a tar.gz:
unpacking it is the first-use path, and building from scratch (with progress bars) is the
fallback when the archive is absent. `tests/demo/test_demo.py` re-runs its rounds in CI from
the shipped prior (lineage/round-0), and
`pack` regenerates the archive: `python -m app.demo.demo_bundle FOLDER`.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

ARCHIVE = Path(__file__).resolve().parent / "assets" / "demo-evolved.tar.gz"


def available() -> bool:
    """True when the package ships the prebuilt archive."""
    return ARCHIVE.is_file()


def unpack(path: Path, archive: Path = ARCHIVE) -> Path:
    """Extract the shipped model folder to `path` (must not exist yet)."""
    path.mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        # The "data" filter refuses absolute names, `..`, links out of the folder and devices.
        tar.extractall(path, filter="data")
    return path


def pack(folder: Path, archive: Path = ARCHIVE) -> Path:
    """Write `folder` (a built builtin:demo-evolved) as the shipped archive."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted(folder.rglob("*")):
            if item.is_file():
                tar.add(item, arcname=str(item.relative_to(folder)))
    return archive


def build_or_unpack(path: Path) -> Path:
    """The builtin:demo-evolved builder: unpack the shipped model, else build it (9 to 15 minutes)."""
    if available():
        return unpack(Path(path))
    from app.demo.demo import build_demo_evolved

    return build_demo_evolved(path)


if __name__ == "__main__":
    print(pack(Path(sys.argv[1])))
