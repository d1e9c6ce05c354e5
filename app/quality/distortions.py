"""Synthetic distortions at 5 levels each (Pillow and numpy only), deterministic by seed.

The paper's second round re-votes on a pool that adds distorted versions of the same images
(KADID-style: one type at one of 5 levels per version). Level 1 is the mildest, 5 the worst.
`apply` takes a raw strength so a benchmark can keep its own level table.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["DISTORTIONS", "LEVELS", "apply", "distort", "rng_for"]

LEVELS = 5

# Strength per level 1..5 (index 0 = level 1). Units are each function's own parameter.
DISTORTIONS: dict[str, tuple[float, ...]] = {
    "blur": (0.6, 1.0, 1.5, 2.2, 3.2),  # Gaussian radius, px
    "motion_blur": (3, 5, 7, 9, 13),  # horizontal kernel length, px
    "jpeg": (50, 25, 12, 7, 4),  # JPEG quality
    "noise": (0.03, 0.06, 0.10, 0.16, 0.22),  # Gaussian sigma on [0, 1] pixels
    "darken": (0.8, 0.6, 0.42, 0.28, 0.18),  # gain
    "brighten": (0.15, 0.3, 0.45, 0.6, 0.75),  # blend weight toward white
    "contrast": (0.3, 0.55, 0.75, 0.88, 0.95),  # blend weight toward the image mean
    "saturation": (0.3, 0.5, 0.7, 0.85, 1.0),  # blend weight toward grey
    "color_cast": (0.08, 0.15, 0.22, 0.3, 0.4),  # shift of red up and blue down
    "pixelate": (0.7, 0.5, 0.35, 0.25, 0.15),  # downscale factor before nearest upscale
}


def _array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0


def _image(x: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(x, 0, 1) * 255).round().astype(np.uint8), "RGB")


def _blur(img: Image.Image, radius: float, rng: np.random.Generator) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else img.copy()


def _motion_blur(img: Image.Image, length: float, rng: np.random.Generator) -> Image.Image:
    n = max(1, int(length))
    x = _array(img)
    pad = np.pad(x, ((0, 0), (n // 2, n - 1 - n // 2), (0, 0)), mode="edge")
    out = np.mean([pad[:, k : k + x.shape[1]] for k in range(n)], axis=0)
    return _image(out)


def _jpeg(img: Image.Image, quality: float, rng: np.random.Generator) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _noise(img: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    x = _array(img)
    return _image(x + rng.normal(0.0, sigma, size=x.shape))


def _darken(img: Image.Image, gain: float, rng: np.random.Generator) -> Image.Image:
    return _image(_array(img) * gain)


def _brighten(img: Image.Image, weight: float, rng: np.random.Generator) -> Image.Image:
    return _image((1 - weight) * _array(img) + weight)


def _contrast(img: Image.Image, weight: float, rng: np.random.Generator) -> Image.Image:
    x = _array(img)
    return _image((1 - weight) * x + weight * x.mean())


def _saturation(img: Image.Image, weight: float, rng: np.random.Generator) -> Image.Image:
    x = _array(img)
    grey = x @ np.array([0.299, 0.587, 0.114])
    return _image((1 - weight) * x + weight * grey[..., None])


def _color_cast(img: Image.Image, shift: float, rng: np.random.Generator) -> Image.Image:
    return _image(_array(img) + np.array([shift, 0.0, -shift]))


def _pixelate(img: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    small = img.convert("RGB").resize(
        (max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BOX
    )
    return small.resize((w, h), Image.Resampling.NEAREST)


_APPLY: dict[str, Callable[[Image.Image, float, np.random.Generator], Image.Image]] = {
    "blur": _blur,
    "motion_blur": _motion_blur,
    "jpeg": _jpeg,
    "noise": _noise,
    "darken": _darken,
    "brighten": _brighten,
    "contrast": _contrast,
    "saturation": _saturation,
    "color_cast": _color_cast,
    "pixelate": _pixelate,
}


def apply(img: Image.Image, kind: str, strength: float, rng: np.random.Generator) -> Image.Image:
    """Distortion `kind` at a raw `strength` (see DISTORTIONS for each kind's unit)."""
    try:
        fn = _APPLY[kind]
    except KeyError:
        raise ValueError(f"unknown distortion {kind!r}; known: {', '.join(DISTORTIONS)}") from None
    return fn(img.convert("RGB"), strength, rng)


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded by `seed` and any labels (e.g. image id, kind, level), stable across runs."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def distort(img: Image.Image, kind: str, level: int, seed: int = 0) -> Image.Image:
    """Distortion `kind` at `level` 1 (mildest) .. 5 (worst); same inputs give the same pixels."""
    if not 1 <= level <= LEVELS:
        raise ValueError(f"level must be in 1..{LEVELS}, got {level}")
    if kind not in DISTORTIONS:
        raise ValueError(f"unknown distortion {kind!r}; known: {', '.join(DISTORTIONS)}")
    return apply(img, kind, DISTORTIONS[kind][level - 1], rng_for(seed, kind, level))
