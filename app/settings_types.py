"""Types the settings are made of: image-format sets and the upload limits group.

Settings own these (app/settings.py builds its fields from them); app/corpus/limits.py reads
the configured values from Settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from PIL import Image
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_settings import NoDecode

MiB = 1024 * 1024


def normalize_formats(value: str | Iterable[str]) -> frozenset[str]:
    """Upper-cased Pillow format names from a list or a comma-separated string; unknown ones fail."""
    if isinstance(value, str):
        value = value.split(",")
    formats = frozenset(name.strip().upper() for name in value if name.strip())
    Image.init()
    unknown = sorted(formats - set(Image.OPEN))
    if unknown:
        raise ValueError(f"unknown Pillow image formats: {unknown}")
    return formats


# NoDecode: the environment gives "JPEG,PNG" rather than a JSON list.
FormatSet = Annotated[frozenset[str], NoDecode, BeforeValidator(normalize_formats)]


class UploadLimits(BaseModel):
    """Limits applied to every uploaded image and archive (Settings exposes each as EVOQ_<NAME>)."""

    model_config = ConfigDict(frozen=True)

    max_file_bytes: int = Field(
        32 * MiB,
        gt=0,
        description="Largest image file accepted, in bytes (also each archive member, uncompressed).",
    )
    max_request_bytes: int = Field(
        512 * MiB,
        gt=0,
        description="Largest upload request body, in bytes (all files and archives together).",
    )
    max_upload_pixels: int = Field(
        40_000_000,
        gt=0,
        description="Largest width×height of an uploaded image, checked from the header before "
        "decoding (decompression-bomb guard; the model's own resize limit is max_pixels).",
    )
    allowed_formats: FormatSet = Field(
        frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF"}),
        description="Image formats accepted, detected from content (never the file name); "
        "Pillow format names, comma-separated.",
    )
    max_files_per_request: int = Field(
        2000,
        gt=0,
        description="Most images per request, counting each archive member as one image.",
    )
    max_archive_members: int = Field(
        10_000,
        gt=0,
        description="Most entries in one zip archive; a larger archive is rejected unread.",
    )
    max_archive_uncompressed_bytes: int = Field(
        1024 * MiB,
        gt=0,
        description="Most bytes one zip archive may expand to, counted while decompressing "
        "(declared sizes are not trusted).",
    )
    max_member_compression_ratio: float = Field(
        200.0,
        gt=1,
        description="Largest uncompressed/compressed ratio of an archive member above 1 MiB "
        "(zip-bomb guard; deflate's ceiling is about 1032).",
    )


def upload_setting(name: str) -> object:
    """A Settings field mirroring UploadLimits.<name>: the same default and help text."""
    source = UploadLimits.model_fields[name]
    return Field(source.default, description=source.description)
