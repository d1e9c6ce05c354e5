"""ImageStore: content-addressed, atomic, idempotent; never a partial file under a final name."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.corpus.store import ImageStore
from tests import badinputs


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_put_lays_out_by_digest(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    data = badinputs.image_bytes("PNG")
    sha = digest(data)
    path = store.put(data, sha, "png")
    assert path == tmp_path / "images" / sha[:2] / sha[2:4] / f"{sha}.png"
    assert path.read_bytes() == data
    assert store.find(sha) == path == store.path_for(sha, "png")
    assert files(tmp_path) == [path]


def test_put_is_idempotent(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = badinputs.image_bytes("JPEG")
    first = store.put(data, digest(data), "jpg")
    inode = first.stat().st_ino
    assert store.put(data, digest(data), "jpg") == first
    assert first.stat().st_ino == inode  # not rewritten
    assert files(tmp_path) == [first]


def test_put_repairs_a_short_file(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = badinputs.image_bytes("PNG")
    path = store.path_for(digest(data), "png")
    path.parent.mkdir(parents=True)
    path.write_bytes(data[:10])
    assert store.put(data, digest(data), "png").read_bytes() == data


def test_put_refuses_a_wrong_digest(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not hash"):
        ImageStore(tmp_path).put(b"abc", digest(b"abd"), "png")
    assert files(tmp_path) == []


@pytest.mark.parametrize("sha", ["../" * 10 + "etc/passwd", "A" * 64, "ab" * 31, ""])
def test_digest_must_be_lowercase_hex(tmp_path: Path, sha: str) -> None:
    store = ImageStore(tmp_path)
    for call in (
        lambda: store.find(sha),
        lambda: store.delete(sha),
        lambda: store.path_for(sha, "png"),
    ):
        with pytest.raises(ValueError, match="sha256"):
            call()


def test_extension_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="extension"):
        ImageStore(tmp_path).path_for(digest(b"x"), "png/../../x")


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ImageStore(tmp_path)
    data = badinputs.image_bytes("PNG")

    def power_cut(src: str, dst: str) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="disk vanished"):
        store.put(data, digest(data), "png")
    assert files(tmp_path) == []
    assert store.find(digest(data)) is None


def test_partial_files_are_invisible_and_swept(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = badinputs.image_bytes("PNG")
    sha = digest(data)
    final = store.put(data, sha, "png")
    stray = final.parent / ".partial-crashed"
    stray.write_bytes(b"half")
    assert store.find(sha) == final
    assert store.remove_partials() == 1
    assert files(tmp_path) == [final]


def test_delete(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = badinputs.image_bytes("WEBP")
    sha = digest(data)
    store.put(data, sha, "webp")
    assert store.delete(sha) is True
    assert store.find(sha) is None
    assert store.delete(sha) is False


def test_concurrent_puts_of_the_same_image(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = badinputs.image_bytes("BMP", size=(128, 128))
    sha = digest(data)
    with ThreadPoolExecutor(8) as pool:
        paths = set(pool.map(lambda _: store.put(data, sha, "bmp"), range(16)))
    assert len(paths) == 1
    assert files(tmp_path) == list(paths)
    assert paths.pop().read_bytes() == data
