"""Bring any image input to the form the model sees: upright, RGB, within a pixel budget."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

ORIENTATION = 0x0112  # EXIF tag


@dataclass(frozen=True)
class PreparedImage:
    """A model-ready image plus its vision inputs, computed ahead of the batch that uses it
    (QualityModel.preprocess). `encoder` is the key of the processor that made them: an
    encoder with another key ignores `vision` and starts again from `image`."""

    image: Image.Image
    vision: Mapping[str, Any]
    encoder: str

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        # Raw bytes and numpy arrays pickle several times faster than PIL images and tensors
        # (5 MB per batch of 16 crosses the pipe to a model process).
        vision = {k: v.numpy() if hasattr(v, "numpy") else v for k, v in self.vision.items()}
        image = (self.image.mode, self.image.size, self.image.tobytes())
        return _rebuild_prepared, (image, vision, self.encoder)


def _rebuild_prepared(image: tuple, vision: dict[str, Any], encoder: str) -> PreparedImage:
    import torch  # only where a pickled PreparedImage is read

    tensors = {k: torch.from_numpy(v) if hasattr(v, "dtype") else v for k, v in vision.items()}
    return PreparedImage(Image.frombytes(*image), tensors, encoder)


ImageSource = Image.Image | PreparedImage | bytes | str | Path


def open_image(src: ImageSource) -> Image.Image:
    """Open a PIL image from an image, encoded bytes or a file path."""
    if isinstance(src, PreparedImage):
        return src.image
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, bytes | bytearray):
        return Image.open(io.BytesIO(src))
    return Image.open(Path(src))


def path_loader(paths: Mapping[Hashable, str | Path]) -> Callable[[Hashable], Image.Image]:
    """A loader from image key to an upright RGB image read from `paths[key]` (file closed
    after). Upright, because augment variants are made from what it returns: a variant of a
    sideways photo would otherwise be distorted, voted on and trained on sideways."""

    def load(key: Hashable) -> Image.Image:
        with open_image(paths[key]) as img:
            upright = ImageOps.exif_transpose(img)
            return upright.convert("RGB") if upright.mode != "RGB" else upright  # a copy

    return load


def prepare_image(src: ImageSource, max_pixels: int) -> Image.Image:
    """EXIF-transposed RGB image whose width x height is at most max_pixels (aspect kept).

    An in-memory RGB image already upright and within budget (what upload validation keeps)
    is returned as it is: copying it again per batch item cost the serving thread ~15% of its
    time. Opened files (ImageFile) are always copied, so the result outlives the file."""
    image = open_image(src)
    if (
        type(image) is Image.Image
        and image.mode == "RGB"
        and image.width * image.height <= max_pixels
        and image.getexif().get(ORIENTATION, 1) == 1
    ):
        return image
    image = ImageOps.exif_transpose(image)
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
