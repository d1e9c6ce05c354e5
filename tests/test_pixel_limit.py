"""Oversized images are refused naming the configured pixel limit (EVOQ_MAX_UPLOAD_PIXELS),
never Pillow's own decompression-bomb threshold."""

from __future__ import annotations

import pytest
from PIL import Image

from app.corpus.errors import Reason, UploadRejected
from app.corpus.limits import UploadLimits
from app.corpus.validation import validate_image_bytes
from tests.badinputs import huge_png_header, image_bytes

LIMIT = 40_000_000


def _refusal(data: bytes, limit: int = LIMIT) -> UploadRejected:
    with pytest.raises(UploadRejected) as refused:
        validate_image_bytes("big.png", data, UploadLimits(max_upload_pixels=limit))
    return refused.value


@pytest.mark.parametrize(
    ("width", "height"),
    [(30000, 30000), (20000, 20000), (10000, 5000)],  # beyond Pillow's 2x bomb limit, its
)  # warning band, and a 50 MP image below both
def test_oversized_headers_quote_the_configured_limit(width: int, height: int) -> None:
    refused = _refusal(huge_png_header(width, height))
    assert refused.reason == Reason.TOO_MANY_PIXELS
    assert f"{width * height} pixels exceeds the limit of {LIMIT}" in refused.detail
    assert str(2 * Image.MAX_IMAGE_PIXELS) not in refused.detail
    assert str(Image.MAX_IMAGE_PIXELS) not in refused.detail


def test_a_lower_configured_limit_is_the_one_applied() -> None:
    refused = _refusal(image_bytes("PNG", (100, 100)), limit=5000)
    assert "10000 pixels exceeds the limit of 5000" in refused.detail
    assert (
        validate_image_bytes(
            "ok.png", image_bytes("PNG", (50, 50)), UploadLimits(max_upload_pixels=5000)
        ).width
        == 50
    )
