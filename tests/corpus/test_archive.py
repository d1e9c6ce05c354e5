"""iter_zip_members: every hostile archive becomes per-member rejections, never files or crashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.corpus.archive import iter_zip_members, looks_like_zip, member_label
from app.corpus.errors import Reason, UploadRejected
from app.corpus.limits import MiB, UploadLimits
from app.corpus.validation import validate_image_bytes
from tests import badinputs

LIMITS = UploadLimits()


def outcomes(data: bytes, limits: UploadLimits = LIMITS) -> dict[str, Reason | bytes]:
    """label → member bytes, or the rejection reason."""
    result: dict[str, Reason | bytes] = {}
    for member in iter_zip_members("up.zip", data, limits):
        assert (member.data is None) != (member.rejection is None)
        if member.rejection is not None:
            assert 400 <= member.rejection.status_code < 500
            assert member.rejection.filename == member.label
            result[member.label] = member.rejection.reason
        else:
            result[member.label] = member.data
    return result


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def test_traversal_names_are_only_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    result = outcomes(badinputs.zip_slip())
    assert set(result) == {
        "up.zip:../evil.png",
        "up.zip:../../etc/evil.png",
        "up.zip:/tmp/abs-evil.png",
        "up.zip:a/../../b.png",
        "up.zip:C:\\x.png",
    }
    for label, data in result.items():
        assert isinstance(data, bytes)
        assert validate_image_bytes(label, data, LIMITS).format == "PNG"
    assert tree(tmp_path) == before
    assert not os.path.exists("/tmp/abs-evil.png")


def test_nested_archives_by_name_and_by_content() -> None:
    result = outcomes(badinputs.nested_zip())
    assert result["up.zip:inner.zip"] is Reason.NESTED_ARCHIVE
    assert result["up.zip:sneaky.png"] is Reason.NESTED_ARCHIVE
    assert isinstance(result["up.zip:good.png"], bytes)


def test_symlink_member() -> None:
    result = outcomes(badinputs.symlink_zip())
    assert result["up.zip:link.png"] is Reason.LINK_MEMBER
    assert isinstance(result["up.zip:good.png"], bytes)


def test_encrypted_member() -> None:
    assert outcomes(badinputs.encrypted_flag_zip()) == {"up.zip:good.png": Reason.ENCRYPTED_MEMBER}


def test_bomb_declaring_its_size_is_refused_unread() -> None:
    assert outcomes(badinputs.zip_bomb()) == {"up.zip:bomb.bmp": Reason.FILE_TOO_LARGE}


def test_bomb_lying_about_its_size_does_not_extract() -> None:
    result = outcomes(badinputs.zip_bomb(declared_bytes=1000))
    assert result == {"up.zip:bomb.bmp": Reason.CORRUPT_ARCHIVE}


def test_bomb_under_the_file_limit_trips_the_ratio() -> None:
    assert outcomes(badinputs.zip_bomb(4 * MiB)) == {"up.zip:bomb.bmp": Reason.COMPRESSION_RATIO}


def test_total_uncompressed_budget_counted_while_reading() -> None:
    # Each member declares 1 MiB (within limits); the fourth trips the budget mid-stream.
    limits = UploadLimits(
        max_archive_uncompressed_bytes=3 * MiB, max_member_compression_ratio=10_000
    )
    data = badinputs.zip_bytes({f"z{i}.bmp": bytes(MiB) for i in range(5)})
    result = outcomes(data, limits)
    assert [isinstance(result[f"up.zip:z{i}.bmp"], bytes) for i in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert result["up.zip:z3.bmp"] is Reason.ARCHIVE_TOO_LARGE
    assert result["up.zip:z4.bmp"] is Reason.ARCHIVE_TOO_LARGE


def test_too_many_members_is_one_rejection() -> None:
    data = badinputs.zip_bytes({f"{i}.png": b"x" for i in range(11)})
    assert outcomes(data, UploadLimits(max_archive_members=10)) == {
        "up.zip": Reason.TOO_MANY_MEMBERS
    }


@pytest.mark.parametrize("data", [b"PK\x03\x04garbage", b"", b"not a zip at all"])
def test_corrupt_archive_is_one_rejection(data: bytes) -> None:
    assert outcomes(data) == {"up.zip": Reason.CORRUPT_ARCHIVE}


def test_directories_skipped_and_non_images_left_to_validation() -> None:
    data = badinputs.zip_bytes(
        {"d/": b"", "d/notes.jpg": b"just text", "d/x.png": badinputs.image_bytes()}
    )
    result = outcomes(data)
    assert set(result) == {"up.zip:d/notes.jpg", "up.zip:d/x.png"}
    with pytest.raises(UploadRejected) as caught:
        validate_image_bytes("up.zip:d/notes.jpg", result["up.zip:d/notes.jpg"], LIMITS)
    assert caught.value.reason is Reason.NOT_AN_IMAGE


def test_thousand_small_images() -> None:
    images = badinputs.many_small_images(1000)
    result = outcomes(badinputs.zip_bytes(dict(images)))
    assert len(result) == 1000
    digests = {validate_image_bytes(label, data, LIMITS).sha256 for label, data in result.items()}
    assert len(digests) == 1000


def test_labels_are_printable() -> None:
    assert member_label("a.zip", "x\x00y\n\x1bz.png") == "a.zip:x?y??z.png"
    assert len(member_label("a.zip", "n" * 5000)) == len("a.zip:") + 300


def test_looks_like_zip() -> None:
    assert looks_like_zip("x.ZIP", b"whatever")
    assert looks_like_zip("upload.bin", badinputs.zip_bytes({"a.png": b"x"}))
    # An image with a zip appended stays an image (judged by its leading bytes).
    polyglot = badinputs.image_bytes("PNG") + badinputs.zip_bytes({"a.png": b"x"})
    assert not looks_like_zip("photo.png", polyglot)
