"""Synthetic labelled IQA benchmark: procedural textures and sample-photo crops at 5 distortion levels.

Quality is known by construction (MOS = 5 - level), so the offline demo can measure learning
without human labels. Splits (prior, pool, eval) share no source image or texture.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from app.quality import distortions

__all__ = [
    "DISTORTIONS",
    "LEVELS",
    "SPLITS",
    "SyntheticConfig",
    "SyntheticImage",
    "generate",
    "load_split",
    "photo_sources",
    "write_synthetic",
]

SPLITS = ("prior", "pool", "eval")
LEVELS = 5

# Level 0 is (near) pristine, level 4 the worst. Darkening, contrast loss and noise are the
# ones a ~0.3M-parameter model learns at 56 px (DEMO-FINDINGS.md); blur and JPEG need more.
DISTORTIONS: dict[str, tuple[float, ...]] = {
    "darken": (1.0, 0.8, 0.6, 0.42, 0.28),  # gain
    "contrast": (0.0, 0.3, 0.55, 0.75, 0.88),  # blend weight toward the image mean
    "noise": (0.01, 0.05, 0.10, 0.16, 0.22),  # Gaussian sigma on [0, 1] pixels
    "blur": (0.0, 0.6, 1.0, 1.5, 2.2),  # Gaussian blur radius in pixels
    "jpeg": (95, 50, 25, 12, 5),  # JPEG quality
}

# Sample photos inside the scikit-image wheel (no download). Stereo/colour twins share a
# source so they never land in two splits.
_PHOTOS: dict[str, tuple[str, ...]] = {
    "astronaut": ("astronaut.png",),
    "brick": ("brick.png",),
    "camera": ("camera.png",),
    "cell": ("cell.png",),
    "chelsea": ("chelsea.png",),
    "chessboard": ("chessboard_RGB.png", "chessboard_GRAY.png"),
    "clock": ("clock_motion.png",),
    "coffee": ("coffee.png",),
    "coins": ("coins.png",),
    "color": ("color.png",),
    "grass": ("grass.png",),
    "gravel": ("gravel.png",),
    "horse": ("horse.png",),
    "hubble": ("hubble_deep_field.jpg",),
    "ihc": ("ihc.png",),
    "logo": ("logo.png",),
    "moon": ("moon.png",),
    "motorcycle": ("motorcycle_left.png", "motorcycle_right.png"),
    "page": ("page.png",),
    "phantom": ("phantom.png",),
    "retina": ("retina.jpg",),
    "rocket": ("rocket.jpg",),
    "text": ("text.png",),
}


@dataclass
class SyntheticConfig:
    """What to generate; the defaults are the demo benchmark of DEMO-FINDINGS.md."""

    seed: int = field(default=0, metadata={"help": "Seed of every random choice."})
    size: int = field(default=56, metadata={"help": "Side of the square output images (px)."})
    counts: dict[str, int] = field(
        default_factory=lambda: {"prior": 1100, "pool": 1500, "eval": 2000},
        metadata={
            "help": "Images per split. Eval holds 2000: one model's SRCC on 360-image draws of "
            "it spread from 0.22 to 0.46 (docs/demo.md), too wide to compare rounds or seeds."
        },
    )
    variants: int = field(
        default=2, metadata={"help": "Distorted versions of each content (random type, level)."}
    )
    distortions: tuple[str, ...] = field(
        default=("darken", "contrast", "noise"),
        metadata={"help": f"Distortion types to draw from; known: {', '.join(DISTORTIONS)}."},
    )
    photo_fraction: float = field(
        default=0.5, metadata={"help": "Share of contents that are photo crops (rest: textures)."}
    )


@dataclass
class SyntheticImage:
    """One labelled image: MOS = 5 - level (higher is better)."""

    image: Image.Image
    filename: str
    split: str
    source: str
    distortion: str
    level: int

    @property
    def mos(self) -> float:
        return float(LEVELS - self.level)


def photo_sources() -> dict[str, list[Image.Image]]:
    """The scikit-image sample photos as RGB images, grouped by source name."""
    import skimage.data

    root = Path(skimage.data.__file__).parent
    out: dict[str, list[Image.Image]] = {}
    for name, files in _PHOTOS.items():
        images = [Image.open(root / f).convert("RGB") for f in files if (root / f).exists()]
        if images:
            out[name] = images
    return out


def _split_photos(names: list[str], rng: np.random.Generator) -> dict[str, list[str]]:
    # Prior gets half of the photos, pool and eval a quarter each, so each split sees several.
    order = [names[i] for i in rng.permutation(len(names))]
    a, b = len(order) // 2, (3 * len(order)) // 4
    return {"prior": order[:a], "pool": order[a:b], "eval": order[b:]}


def _crop(photo: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    w, h = photo.size
    side = int(rng.uniform(0.15, 0.6) * min(w, h))
    side = max(min(side, w, h), min(size, w, h))
    x = int(rng.integers(0, w - side + 1))
    y = int(rng.integers(0, h - side + 1))
    img = photo.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BICUBIC)
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else img


def _sinusoids(size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.zeros((size, size, 3))
    for _ in range(int(rng.integers(2, 5))):
        theta, freq, phase = rng.uniform(0, np.pi), rng.uniform(1, 8), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
        out += wave[..., None] * rng.uniform(-1, 1, size=3)
    out = (out - out.min()) / (np.ptp(out) + 1e-9)
    lo, hi = sorted(rng.uniform(0.0, 1.0, size=2))
    return lo * 0.5 + out * (0.5 + (hi - lo) * 0.5)


def _discs(size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.ones((size, size, 3)) * rng.uniform(0.1, 0.9, size=3)
    for _ in range(int(rng.integers(3, 12))):
        cx, cy = rng.uniform(0, size, size=2)
        r = rng.uniform(size * 0.06, size * 0.35)
        out[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0.0, 1.0, size=3)
    return out


def _texture(size: int, rng: np.random.Generator) -> Image.Image:
    arr = _sinusoids(size, rng) if rng.random() < 0.5 else _discs(size, rng)
    return Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8), "RGB")


def distort(img: Image.Image, kind: str, level: int, rng: np.random.Generator) -> Image.Image:
    """Apply distortion `kind` at this benchmark's `level` (0 = mildest, 4 = worst)."""
    if kind not in DISTORTIONS:
        raise ValueError(f"unknown distortion {kind!r}; known: {', '.join(DISTORTIONS)}")
    return distortions.apply(img, kind, DISTORTIONS[kind][level], rng)


def generate(config: SyntheticConfig | None = None) -> dict[str, list[SyntheticImage]]:
    """Build every split in memory; deterministic given `config.seed`."""
    cfg = config or SyntheticConfig()
    unknown = set(cfg.distortions) - set(DISTORTIONS) | set(cfg.counts) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown distortions or splits: {sorted(unknown)}")
    rng = np.random.default_rng(cfg.seed)
    photos = photo_sources()
    photo_split = _split_photos(sorted(photos), rng)
    out: dict[str, list[SyntheticImage]] = {}
    for split in SPLITS:
        n = cfg.counts.get(split, 0)
        items: list[SyntheticImage] = []
        for c in range((n + cfg.variants - 1) // cfg.variants):
            if photo_split[split] and rng.random() < cfg.photo_fraction:
                name = photo_split[split][int(rng.integers(len(photo_split[split])))]
                variants = photos[name]
                content = _crop(variants[int(rng.integers(len(variants)))], cfg.size, rng)
                source = f"photo:{name}"
            else:
                content, source = _texture(cfg.size, rng), f"texture:{split}-{c}"
            for _ in range(cfg.variants):
                if len(items) == n:
                    break
                kind = cfg.distortions[int(rng.integers(len(cfg.distortions)))]
                level = int(rng.integers(LEVELS))
                items.append(
                    SyntheticImage(
                        image=distort(content, kind, level, rng),
                        filename=f"{split}-{len(items):05d}.png",
                        split=split,
                        source=source,
                        distortion=kind,
                        level=level,
                    )
                )
        out[split] = items
    return out


_COLUMNS = ("filename", "mos", "level", "distortion", "source")


def write_synthetic(
    out: Path | str,
    config: SyntheticConfig | None = None,
    data: dict[str, list[SyntheticImage]] | None = None,
) -> dict[str, int]:
    """Write OUT/<split>/*.png and OUT/<split>/labels.csv; returns images written per split.

    `data` is `generate(config)` when the caller already holds it (it is not drawn again)."""
    root = Path(out)
    written: dict[str, int] = {}
    for split, items in (data if data is not None else generate(config)).items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for item in items:
            item.image.save(folder / item.filename)
        _write_labels(folder / "labels.csv", items)
        written[split] = len(items)
    return written


def _write_labels(path: Path, items: Iterable[SyntheticImage]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(_COLUMNS)
        for it in items:
            writer.writerow([it.filename, f"{it.mos:g}", it.level, it.distortion, it.source])


def load_split(root: Path | str, split: str) -> list[SyntheticImage]:
    """Read back a split written by `write_synthetic`."""
    folder = Path(root) / split
    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        SyntheticImage(
            image=Image.open(folder / r["filename"]).convert("RGB"),
            filename=r["filename"],
            split=split,
            source=r["source"],
            distortion=r["distortion"],
            level=int(r["level"]),
        )
        for r in rows
    ]
