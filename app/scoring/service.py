"""Scoring requests: validate uploads, submit them to the micro-batcher, shape the results."""

from __future__ import annotations

import asyncio

from PIL import Image

from app.corpus import service as corpus
from app.corpus.limits import UploadLimits
from app.corpus.uploads import UploadedFile
from app.corpus.validation import ValidatedImage, validate_image_bytes
from app.db import session_scope
from app.deps import image_store
from app.quality.images import ImageSource
from app.quality.model import QualityModel
from app.scoring.serving import ScoreJob, Scorer, Served
from app.settings import Settings

LEVELS = ((1.8, "bad"), (2.6, "poor"), (3.4, "fair"), (4.2, "good"))


def level_for(score: float | None) -> str | None:
    """The band of a 1–5 score: five equal-width levels, as in Q-Align."""
    if score is None:
        return None
    for upper, name in LEVELS:
        if score < upper:
            return name
    return "excellent"


def validate_all(
    files: list[UploadedFile], limits: UploadLimits, *, max_pixels: int
) -> list[ValidatedImage]:
    """Every file validated with its model-ready pixels kept, or the first problem as a 4xx."""
    return [validate_image_bytes(f.name, f.data, limits, keep_pixels=max_pixels) for f in files]


async def validate_off_loop(
    files: list[UploadedFile], limits: UploadLimits, *, max_pixels: int
) -> list[ValidatedImage]:
    """validate_all in a worker thread: decoding then uses the other cores (Pillow, hashlib and
    zlib release the GIL) while the event loop keeps reading requests and feeding the batcher."""
    return await asyncio.to_thread(validate_all, files, limits, max_pixels=max_pixels)


def pixel_budget(model: QualityModel | None, setting: int) -> int:
    """The serving model's pixel bound, else the setting: images are downscaled to it while
    validating, off the loop, so the batch thread does not resize them again (the model's own
    processor bound may be below the setting)."""
    return model.max_pixels if model is not None else setting


def validate_for_model(
    files: list[UploadedFile], limits: UploadLimits, model: QualityModel | None, max_pixels: int
) -> tuple[list[ValidatedImage], list[ImageSource]]:
    """validate_all, plus each image made ready for `model` (its vision inputs computed), so the
    batch thread that every request shares spends its time in the model only."""
    images = validate_all(files, limits, max_pixels=pixel_budget(model, max_pixels))
    if model is None:
        return images, [pixels(image) for image in images]
    return images, [model.preprocess(pixels(image)) for image in images]


def pixels(image: ValidatedImage) -> Image.Image:
    """The model-ready pixels kept by validation."""
    if image.pixels is None:
        raise ValueError("validate with keep_pixels to score an image")
    return image.pixels


async def score_images(
    scorer: Scorer, inputs: list[ImageSource], *, mode: str, samples: int, explain: bool
) -> list[Served]:
    """Scores in upload order; each image is its own batch item so requests coalesce."""
    jobs = [ScoreJob(image, mode=mode, samples=samples, explain=explain) for image in inputs]
    return list(await asyncio.gather(*(scorer.submit(job) for job in jobs)))


def store_scored(
    settings: Settings,
    files: list[UploadedFile],
    images: list[ValidatedImage],
    *,
    train_opt_out: bool,
) -> list[bool]:
    """Add scored images to the corpus in one transaction; True where newly stored."""
    store, seen, stored = image_store(settings), {}, []
    with session_scope() as db:
        for upload, image in zip(files, images, strict=True):
            outcome = corpus.add_image(
                db=db,
                store=store,
                image=image,
                label=upload.name,
                source="score",
                train_opt_out=train_opt_out,
                seen_here=seen,
            )
            stored.append(outcome.status == "stored")
    return stored
