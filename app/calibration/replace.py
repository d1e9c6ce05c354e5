"""An operator replaces the anchor set: uploaded images and/or sha256s of corpus images, scored
by the serving version; its calibrated scores become the new targets, so the scale stays."""

from __future__ import annotations

import asyncio
import re

from app.calibration import anchors, service
from app.calibration.models import AnchorSet
from app.corpus.limits import UploadLimits
from app.corpus.models import Image
from app.corpus.uploads import UploadedFile
from app.db import session_scope
from app.errors import EvoqError
from app.quality.calibration import MIN_ANCHORS
from app.scoring import service as scoring
from app.scoring.serving import ScoreJob, Scorer
from app.settings import Settings

_SHA256 = re.compile(r"[0-9a-f]{64}")


def parse_sha256s(values: list[str]) -> list[str]:
    """Digests from form fields (repeated, or separated by commas or whitespace), deduplicated."""
    out: list[str] = []
    for token in (t for v in values for t in re.split(r"[\s,]+", v.strip().lower()) if t):
        if not _SHA256.fullmatch(token):
            raise EvoqError("invalid_sha256", f"{token[:80]!r} is not a sha256 hex digest", 422)
        if token not in out:
            out.append(token)
    return out


def corpus_paths(sha256s: list[str]) -> list[str]:
    """Stored paths of corpus images, in the given order; 422 naming any unknown digest."""
    with session_scope() as db:
        found = {s: db.get(Image, s) for s in sha256s}
        missing = [s for s, image in found.items() if image is None]
        if missing:
            raise EvoqError(
                "unknown_image",
                f"{len(missing)} sha256 not in the corpus, first {missing[0]}",
                422,
                extra={"missing": missing[:20]},
            )
        return [found[s].path for s in sha256s]


async def replace_anchor_set(
    *,
    settings: Settings,
    scorer: Scorer,
    files: list[UploadedFile],
    sha256s: list[str],
    limits: UploadLimits,
    actor: str,
    reason: str,
) -> AnchorSet:
    """Validate and store the new anchors, score them with the serving version (its serving mode),
    record the set with that version's calibrated scores as targets."""
    validated = await scoring.validate_off_loop(files, limits, max_pixels=settings.max_pixels)
    paths = await asyncio.to_thread(corpus_paths, sha256s)
    store = anchors.anchor_store(settings)
    new = [anchors.store_bytes(store, v.data, v.ext) for v in validated]
    new += await asyncio.to_thread(anchors.copy_corpus_images, store, paths)
    unique = list({a.sha256: a for a in new}.values())
    if len(unique) < MIN_ANCHORS:
        raise EvoqError(
            "too_few_anchors", f"{len(unique)} distinct images; at least {MIN_ANCHORS}", 422
        )
    pixels = await asyncio.to_thread(anchors.load, unique)
    served = await asyncio.gather(*(scorer.submit(ScoreJob(p, mode="auto")) for p in pixels))
    versions = {s.version_id for s in served}
    if len(versions) != 1:
        raise EvoqError("version_changed", "the serving version changed while scoring", 409)
    source = "upload" if not sha256s else "sha256" if not files else "mixed"
    with session_scope() as db:
        anchor_set = service.record_anchor_set(
            db=db,
            anchors=unique,
            raw_scores=[s.raw_score for s in served],
            scored_by_version_id=versions.pop(),
            source=source,
            actor=actor,
            reason=reason,
        )
    return anchor_set
