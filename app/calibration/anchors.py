"""Choosing, storing and freezing anchor images: a seeded corpus sample when the corpus is large
enough, else synthetic anchors generated with a fixed seed; files kept in their own store so the
set stays frozen whatever happens to the corpus."""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import select

from app.calibration import service
from app.calibration.service import Anchor
from app.corpus import service as corpus
from app.corpus.models import Image
from app.corpus.store import ImageStore
from app.db import session_scope
from app.quality.images import open_image
from app.quality.model import QualityModel
from app.settings import Settings

log = logging.getLogger("evoq.calibration")

RawScorer = Callable[[list[PILImage.Image]], list[float]]


def raw_serving_scores(model: QualityModel) -> RawScorer:
    """A model's raw scores in its serving mode (deterministic for a reasoning model, fast for
    an answer-only one): the scores the API serves are the ones anchors put on the scale."""

    def score(images: list[PILImage.Image]) -> list[float]:
        mode = model.serving_mode("score")
        return [result.score for result in model.score(images, mode=mode)]

    return score


def anchor_store(settings: Settings) -> ImageStore:
    """The content-addressed store of anchor images (apart from the corpus store)."""
    return ImageStore(settings.data_dir.resolve() / "anchors")


def store_bytes(store: ImageStore, data: bytes, ext: str) -> Anchor:
    """Put one encoded image into the anchor store."""
    sha256 = hashlib.sha256(data).hexdigest()
    return Anchor(sha256, str(store.put(data, sha256, ext)))


def store_image(store: ImageStore, image: PILImage.Image) -> Anchor:
    """Encode an image as PNG and put it into the anchor store."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return store_bytes(store, buffer.getvalue(), "png")


def synthetic_images(size: int, seed: int) -> list[PILImage.Image]:
    """`size` labelled-by-construction synthetic images over every distortion type."""
    from app.demo.synthetic import DISTORTIONS, SyntheticConfig, generate

    config = SyntheticConfig(seed=seed, counts={"eval": size}, distortions=tuple(DISTORTIONS))
    return [item.image for item in generate(config)["eval"]]


def copy_corpus_images(store: ImageStore, paths: Sequence[str]) -> list[Anchor]:
    """Copy corpus files into the anchor store (a later corpus delete leaves the set whole)."""
    return [store_bytes(store, Path(p).read_bytes(), Path(p).suffix.lstrip(".")) for p in paths]


def choose(settings: Settings) -> tuple[str, list[Anchor]]:
    """A seeded sample of the trainable corpus when it holds enough images, else synthetic."""
    size, seed, store = settings.anchor_set_size, settings.anchor_seed, anchor_store(settings)
    with session_scope() as db:
        if corpus.count_trainable(db=db) >= size:
            shas = [image.sha256 for image in corpus.get_trainable(db=db)]
            chosen = random.Random(seed).sample(shas, size)
            paths = dict(
                db.execute(select(Image.sha256, Image.path).where(Image.sha256.in_(chosen)))
            )
            return "corpus", copy_corpus_images(store, [paths[s] for s in chosen])
    return "synthetic", [store_image(store, img) for img in synthetic_images(size, seed)]


def load(anchors: Sequence[Anchor]) -> list[PILImage.Image]:
    """The anchor images as RGB."""
    out = []
    for anchor in anchors:
        with open_image(anchor.path) as img:
            out.append(img.convert("RGB"))
    return out


def freeze_if_missing(settings: Settings, version_id: int, score_raw: RawScorer) -> int | None:
    """Freeze the first anchor set with `version_id`'s raw scores unless one exists; the new
    set's id, or None when there was one already. A file lock keeps the API and a worker on one
    host from freezing two sets at once."""
    lock_path = settings.data_dir.resolve() / "anchors.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with session_scope() as db:
            if service.current_set(db=db) is not None:
                return None
        source, anchors = choose(settings)
        raw = score_raw(load(anchors))
        with session_scope() as db:
            anchor_set = service.record_anchor_set(
                db=db,
                anchors=anchors,
                raw_scores=raw,
                scored_by_version_id=version_id,
                source=source,
                seed=settings.anchor_seed,
                actor="system",
                reason="first activation",
            )
            return anchor_set.id


def anchors_of(anchor_set_id: int) -> tuple[list[Anchor], list[float]]:
    """A set's anchors and their targets on the reference scale, in stored order."""
    with session_scope() as db:
        rows = service.images(db=db, anchor_set_id=anchor_set_id)
        return [Anchor(r.sha256, r.path) for r in rows], [r.target for r in rows]
