"""Bring any image input to the form the model sees: upright, RGB, within a pixel budget."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path

from PIL import Image, ImageOps

ImageSource = Image.Image | bytes | str | Path


def open_image(src: ImageSource) -> Image.Image:
    """Open a PIL image from an image, encoded bytes or a file path."""
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, bytes | bytearray):
        return Image.open(io.BytesIO(src))
    return Image.open(Path(src))


def path_loader(paths: Mapping[Hashable, str | Path]) -> Callable[[Hashable], Image.Image]:
    """A loader from image key to an RGB image read from `paths[key]` (file closed after)."""

    def load(key: Hashable) -> Image.Image:
        with open_image(paths[key]) as img:
            return img.convert("RGB") if img.mode != "RGB" else img.copy()

    return load


def prepare_image(src: ImageSource, max_pixels: int) -> Image.Image:
    """EXIF-transposed RGB copy whose width x height is at most max_pixels (aspect kept)."""
    image = ImageOps.exif_transpose(open_image(src))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas read as white, as a viewer shows them, not as black.
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.getchannel("A"))
    else:
        image = image.convert("RGB")
    width, height = image.size
    if width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    return image
