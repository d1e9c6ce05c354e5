"""Small JPEG previews of stored corpus images (the console's thumbnails)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

MAX_SIDE = 512


def thumbnail_jpeg(path: Path, size: int = 160) -> bytes:
    """The image at `path` shrunk to fit size x size (aspect kept, EXIF turned upright) as JPEG."""
    side = max(1, min(size, MAX_SIDE))
    with Image.open(path) as image:
        # JPEG decodes at 1/2..1/8 scale directly: large photos never decode at full size.
        image.draft("RGB", (side, side))
        image = ImageOps.exif_transpose(image)
        image.thumbnail((side, side))
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.new("RGB", rgba.size, "white")
            image.paste(rgba, mask=rgba.getchannel("A"))
        else:
            image = image.convert("RGB")
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80)
    return out.getvalue()
