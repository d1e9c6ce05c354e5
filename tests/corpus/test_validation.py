"""validate_image_bytes: accepts real images by content, refuses every hostile input with a 4xx."""

from __future__ import annotations

import hashlib

import pytest

from app.corpus.errors import Reason, UploadRejected
from app.corpus.limits import UploadLimits, limits_from_settings
from app.corpus.validation import validate_image_bytes
from app.settings import Settings
from tests import badinputs

LIMITS = UploadLimits()


def rejection(name: str, data: bytes, limits: UploadLimits = LIMITS) -> UploadRejected:
    with pytest.raises(UploadRejected) as caught:
        validate_image_bytes(name, data, limits)
    error = caught.value
    assert 400 <= error.status_code < 500
    assert error.to_dict()["filename"] == name
    assert error.to_dict()["error"] == error.reason.value
    return error


@pytest.mark.parametrize(
    ("fmt", "ext"),
    [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tif")],
)
def test_accepts_each_allowed_format(fmt: str, ext: str) -> None:
    data = badinputs.image_bytes(fmt, size=(40, 30))
    image = validate_image_bytes(f"x.{ext}", data, LIMITS)
    assert (image.format, image.width, image.height, image.ext) == (fmt, 40, 30, ext)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.bytes == len(data) and image.data == data


def test_format_comes_from_content_not_name() -> None:
    image = validate_image_bytes("actually-a-png.jpg", badinputs.image_bytes("PNG"), LIMITS)
    assert image.format == "PNG" and image.ext == "png"


def test_empty_file() -> None:
    assert rejection("empty.png", b"").reason is Reason.EMPTY_FILE


def test_corrupt_bytes_after_a_png_header() -> None:
    assert rejection("broken.png", badinputs.corrupt_bytes()).reason is Reason.CORRUPT_IMAGE


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_truncated_image(fmt: str) -> None:
    data = badinputs.image_bytes(fmt, size=(64, 64))
    assert rejection("cut", data[: len(data) // 2]).reason is Reason.CORRUPT_IMAGE


def test_truncated_png_builder() -> None:
    error = rejection("cut.png", badinputs.truncated_png())
    assert error.reason is Reason.CORRUPT_IMAGE


def test_text_named_jpg() -> None:
    name, data = badinputs.text_named_jpg()
    assert rejection(name, data).reason is Reason.NOT_AN_IMAGE


def test_disallowed_format_is_named() -> None:
    error = rejection("anim.gif", badinputs.image_bytes("GIF"))
    assert error.reason is Reason.UNSUPPORTED_FORMAT and error.status_code == 415
    assert "GIF" in error.detail


def test_allowed_formats_is_configurable() -> None:
    png_only = UploadLimits(allowed_formats="png")
    assert rejection("x.jpg", badinputs.image_bytes("JPEG"), png_only).reason is (
        Reason.UNSUPPORTED_FORMAT
    )
    assert validate_image_bytes("x.png", badinputs.image_bytes("PNG"), png_only).format == "PNG"


def test_file_over_byte_limit() -> None:
    data = badinputs.image_bytes("BMP", size=(64, 64))
    error = rejection("big.bmp", data, UploadLimits(max_file_bytes=len(data) - 1))
    assert error.reason is Reason.FILE_TOO_LARGE and error.status_code == 413


def test_20000_square_png_is_refused_without_decoding() -> None:
    data = badinputs.huge_png_header(20000, 20000)
    assert len(data) < 1000
    assert rejection("huge.png", data).reason is Reason.TOO_MANY_PIXELS


def test_pixel_limit_checked_from_header() -> None:
    # 64 Mpx: under Pillow's own bomb threshold, over our 40 Mpx default.
    error = rejection("big.png", badinputs.huge_png_header(8000, 8000))
    assert error.reason is Reason.TOO_MANY_PIXELS and "8000x8000" in error.detail


def test_pixel_limit_is_configurable() -> None:
    small = UploadLimits(max_upload_pixels=31 * 24)
    assert rejection("x.png", badinputs.image_bytes("PNG", size=(32, 24)), small).reason is (
        Reason.TOO_MANY_PIXELS
    )


def test_pillow_bomb_warning_becomes_a_rejection() -> None:
    # 100 Mpx exceeds Pillow's MAX_IMAGE_PIXELS (warning range) even when our limit allows it.
    lenient = UploadLimits(max_upload_pixels=10**9)
    error = rejection("bomb.png", badinputs.huge_png_header(10000, 10000), lenient)
    assert error.reason is Reason.TOO_MANY_PIXELS


def test_animated_image_is_refused() -> None:
    assert rejection("anim.png", badinputs.animated_png()).reason is Reason.MULTI_FRAME


def test_camera_mpo_counts_as_jpeg() -> None:
    image = validate_image_bytes("camera.jpg", badinputs.camera_mpo(), LIMITS)
    assert (image.format, image.ext, image.width) == ("JPEG", "jpg", 16)


def test_limits_from_settings_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits_from_settings(Settings()) == UploadLimits()
    monkeypatch.setenv("EVOQ_ALLOWED_FORMATS", "jpeg, png")
    monkeypatch.setenv("EVOQ_MAX_FILE_BYTES", "1234")
    limits = limits_from_settings(Settings())
    assert limits.allowed_formats == {"JPEG", "PNG"} and limits.max_file_bytes == 1234
    monkeypatch.setenv("EVOQ_ALLOWED_FORMATS", "PNG,NOSUCHFORMAT")
    with pytest.raises(ValueError, match="NOSUCHFORMAT"):
        Settings()
