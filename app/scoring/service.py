"""Scoring requests: validate uploads, submit them to the micro-batcher, shape the results."""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageOps

from app.corpus.limits import UploadLimits
from app.corpus.uploads import UploadedFile
from app.corpus.validation import ValidatedImage, validate_image_bytes
from app.scoring.serving import ScoreJob, Scorer, Served

LEVELS = ((1.8, "bad"), (2.6, "poor"), (3.4, "fair"), (4.2, "good"))


def level_for(score: float | None) -> str | None:
    """The band of a 1–5 score: five equal-width levels, as in Q-Align."""
    if score is None:
        return None
    for upper, name in LEVELS:
        if score < upper:
            return name
    return "excellent"


def validate_all(files: list[UploadedFile], limits: UploadLimits) -> list[ValidatedImage]:
    """Every file validated, or the first problem raised as a 4xx naming the file."""
    return [validate_image_bytes(f.name, f.data, limits) for f in files]


def decode(image: ValidatedImage) -> Image.Image:
    """A validated image as RGB pixels with its EXIF orientation applied."""
    with Image.open(io.BytesIO(image.data)) as img:
        return ImageOps.exif_transpose(img).convert("RGB")


async def score_images(
    scorer: Scorer, images: list[ValidatedImage], *, mode: str, samples: int, explain: bool
) -> list[Served]:
    """Scores in upload order; each image is its own batch item so requests coalesce."""
    jobs = [ScoreJob(decode(img), mode=mode, samples=samples, explain=explain) for img in images]
    return list(await asyncio.gather(*(scorer.submit(job) for job in jobs)))
