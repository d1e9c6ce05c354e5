"""Decide whether uploaded bytes are one acceptable image, judging by content, never by name."""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from app.corpus.errors import Reason, UploadRejected
from app.corpus.limits import UploadLimits
from app.quality.images import prepare_image

# File extension the store uses for each accepted Pillow format.
EXTENSIONS: dict[str, str] = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tif",
    "GIF": "gif",
}


# Camera MPO files are JPEGs whose extra frames are embedded previews or stereo views;
# the first frame is a plain JPEG, so they are accepted and recorded as JPEG.
_FORMAT_ALIASES: dict[str, str] = {"MPO": "JPEG"}


@dataclass(frozen=True)
class ValidatedImage:
    """An image that decoded completely within the limits; `data` is the original bytes.

    `pixels` is the decoded picture in the model's input form (upright RGB, within a pixel
    budget) when validation was asked to keep it, so scoring never decodes the bytes again.
    """

    sha256: str
    format: str
    width: int
    height: int
    bytes: int
    data: bytes
    pixels: Image.Image | None = field(default=None, repr=False, compare=False)

    @property
    def ext(self) -> str:
        """File extension for the content-addressed store."""
        return EXTENSIONS.get(self.format, self.format.lower())


def validate_image_bytes(
    name: str, data: bytes, limits: UploadLimits, *, keep_pixels: int | None = None
) -> ValidatedImage:
    """The validated image, or UploadRejected naming `name` and the problem.

    keep_pixels: also keep the decoded pixels, EXIF-transposed RGB downscaled to at most this
    many pixels (the one decode serves both the check and the model).

    Multi-frame images (animated PNG/WebP, multi-page TIFF) are rejected: a quality score
    belongs to one picture, and later frames would escape the pixel check. Camera MPO files
    (JPEG plus embedded previews) count as JPEG.
    """
    if not data:
        raise UploadRejected(Reason.EMPTY_FILE, "the file is empty", name)
    if len(data) > limits.max_file_bytes:
        raise UploadRejected(
            Reason.FILE_TOO_LARGE,
            f"{len(data)} bytes exceeds the limit of {limits.max_file_bytes} bytes",
            name,
        )
    # Pillow's bomb check warns between MAX_IMAGE_PIXELS and twice that; make it an error.
    # (catch_warnings is process-global; concurrent use can at worst leave this filter in
    # place, which is the behaviour wanted anyway.)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open(name, data, limits) as img:
            _check_header(name, img, limits)
            _verify(name, img)
        with _open(name, data, limits) as img:  # verify() leaves the image unusable
            _decode(name, img, limits)
            width, height = img.size
            fmt = _FORMAT_ALIASES.get(str(img.format), str(img.format))
            pixels = None if keep_pixels is None else _model_input(name, img, keep_pixels)
    return ValidatedImage(
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        width=width,
        height=height,
        bytes=len(data),
        data=data,
        pixels=pixels,
    )


def _open(name: str, data: bytes, limits: UploadLimits) -> Image.Image:
    """Parse the header with only the allowed decoders; say which format it was if refused."""
    try:
        return Image.open(io.BytesIO(data), formats=sorted(limits.allowed_formats))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(name, exc, limits) from exc
    except UnidentifiedImageError:
        pass
    except Exception as exc:  # any parser failure on untrusted bytes is the file's fault
        raise UploadRejected(Reason.CORRUPT_IMAGE, f"unreadable image header: {exc}", name) from exc
    fmt = _identify_any(data) or _sniff(data)
    if fmt in limits.allowed_formats:
        raise UploadRejected(Reason.CORRUPT_IMAGE, f"a damaged {fmt} file", name)
    if fmt is not None:
        allowed = ", ".join(sorted(limits.allowed_formats))
        raise UploadRejected(
            Reason.UNSUPPORTED_FORMAT, f"{fmt} is not an allowed format ({allowed})", name
        )
    raise UploadRejected(
        Reason.NOT_AN_IMAGE, "the content is not a recognisable image (the name is ignored)", name
    )


def _identify_any(data: bytes) -> str | None:
    """The format name of any image Pillow knows, reading the header only (never decoding)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format
    except Exception:  # only used to word the rejection; unknown stays unknown
        return None


# Leading bytes of the allowed formats, to word a rejection when Pillow cannot even parse the header.
_SIGNATURES: dict[bytes, str] = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _sniff(data: bytes) -> str | None:
    """The format the leading bytes announce, if any."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _SIGNATURES.items() if data.startswith(magic)), None)


def _check_header(name: str, img: Image.Image, limits: UploadLimits) -> None:
    """Refuse by dimensions and frame count before any pixel is decoded."""
    width, height = img.size
    if width * height > limits.max_upload_pixels:
        raise UploadRejected(
            Reason.TOO_MANY_PIXELS,
            f"{width}x{height} = {width * height} pixels exceeds the limit of "
            f"{limits.max_upload_pixels} (EVOQ_MAX_UPLOAD_PIXELS)",
            name,
        )
    frames = getattr(img, "n_frames", 1)
    if frames != 1 and img.format not in _FORMAT_ALIASES:
        raise UploadRejected(
            Reason.MULTI_FRAME, f"{frames} frames; only single-frame images are accepted", name
        )


def _verify(name: str, img: Image.Image) -> None:
    """Check the container structure (for PNG: every chunk's CRC through IEND)."""
    try:
        img.verify()
    except Exception as exc:  # structural damage in untrusted bytes
        raise UploadRejected(Reason.CORRUPT_IMAGE, f"damaged image file: {exc}", name) from exc


def _bomb(name: str, exc: Exception, limits: UploadLimits) -> UploadRejected:
    """Pillow's decompression-bomb refusal worded with the configured limit
    (EVOQ_MAX_UPLOAD_PIXELS), not Pillow's own threshold."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = int(found.group(1)) if found else None
    if pixels is not None and pixels <= limits.max_upload_pixels:
        # A limit set above Pillow's own bomb threshold: Pillow still refuses the decode.
        detail = (
            f"{pixels} pixels is within EVOQ_MAX_UPLOAD_PIXELS ({limits.max_upload_pixels}) but "
            f"above the decoder's decompression-bomb threshold: {exc}"
        )
    else:
        claimed = f"{pixels} pixels" if pixels is not None else "the image's pixel count"
        detail = (
            f"{claimed} exceeds the limit of {limits.max_upload_pixels} (EVOQ_MAX_UPLOAD_PIXELS)"
        )
    return UploadRejected(Reason.TOO_MANY_PIXELS, detail, name)


def _decode(name: str, img: Image.Image, limits: UploadLimits) -> None:
    """Decode every pixel so truncated or corrupt data is caught now, not at scoring time."""
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(name, exc, limits) from exc
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, EOFError...
        raise UploadRejected(
            Reason.CORRUPT_IMAGE, f"the image does not decode: {exc}", name
        ) from exc


def _model_input(name: str, img: Image.Image, max_pixels: int) -> Image.Image:
    """The decoded image as the model sees it; a broken EXIF block is the file's fault too."""
    try:
        return prepare_image(img, max_pixels)
    except Exception as exc:  # exif_transpose parses untrusted EXIF
        raise UploadRejected(
            Reason.CORRUPT_IMAGE, f"unreadable image metadata: {exc}", name
        ) from exc
