"""Corpus: ingest uploads (archives expanded, validated, deduplicated, stored durably), list, delete."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import Integer, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.corpus.archive import iter_zip_members, looks_like_zip
from app.corpus.errors import Reason, UploadRejected
from app.corpus.limits import UploadLimits
from app.corpus.models import Image
from app.corpus.schemas import CorpusStats, FileResult
from app.corpus.store import ImageStore
from app.corpus.uploads import UploadedFile
from app.corpus.validation import ValidatedImage, validate_image_bytes
from app.errors import EvoqError
from app.rounds.models import Round


@dataclass(frozen=True)
class Candidate:
    """An image file to ingest, or the reason it cannot be."""

    label: str
    data: bytes | None = None
    rejection: UploadRejected | None = None


def expand(files: list[UploadedFile], limits: UploadLimits) -> Iterator[Candidate]:
    """Uploaded files with zip archives replaced by their members, in upload order."""
    for upload in files:
        if looks_like_zip(upload.name, upload.data):
            for member in iter_zip_members(upload.name, upload.data, limits):
                yield Candidate(member.label, member.data, member.rejection)
        else:
            yield Candidate(upload.name, upload.data)


def check_count(files: list[UploadedFile], limits: UploadLimits) -> None:
    """Refuse an upload expanding to more than max_files_per_request images, naming the first
    one over; a dry run of expand() that keeps no member, stopping at that one."""
    over = next(islice(expand(files, limits), limits.max_files_per_request, None), None)
    if over is not None:
        raise UploadRejected(
            Reason.TOO_MANY_FILES,
            f"more than {limits.max_files_per_request} images in one request "
            "(archive members count one each); nothing was stored",
            over.label,
        )


def ingest(
    *,
    db: Session,
    store: ImageStore,
    files: list[UploadedFile],
    limits: UploadLimits,
    source: str = "upload",
    train_opt_out: bool = False,
) -> list[FileResult]:
    """Validate and store every image; one result per file or archive member, in order.

    An upload holding more than max_files_per_request images is refused (413) before anything
    is stored.
    """
    check_count(files, limits)
    results: list[FileResult] = []
    seen_here: dict[str, str] = {}
    for candidate in expand(files, limits):
        if candidate.rejection is not None:
            results.append(_rejected(candidate.label, candidate.rejection))
            continue
        try:
            image = validate_image_bytes(candidate.label, candidate.data or b"", limits)
        except UploadRejected as exc:
            results.append(_rejected(candidate.label, exc))
            continue
        results.append(
            add_image(
                db=db,
                store=store,
                image=image,
                label=candidate.label,
                source=source,
                train_opt_out=train_opt_out,
                seen_here=seen_here,
            )
        )
    return results


def add_image(
    *,
    db: Session,
    store: ImageStore,
    image: ValidatedImage,
    label: str,
    source: str,
    train_opt_out: bool = False,
    seen_here: dict[str, str] | None = None,
) -> FileResult:
    """Store one validated image unless its bytes are already stored; the row follows the file."""
    seen_here = {} if seen_here is None else seen_here
    if image.sha256 in seen_here:
        return FileResult(
            filename=label,
            status="duplicate",
            sha256=image.sha256,
            duplicate_of=f"same bytes (sha256) as {seen_here[image.sha256]!r} earlier in this request",
        )
    existing = db.get(Image, image.sha256)
    if existing is not None:
        seen_here[image.sha256] = label
        return _duplicate_of_stored(label, existing)
    path = store.put(image.data, image.sha256, image.ext)  # durable before the row exists
    row = Image(
        sha256=image.sha256,
        path=str(path),
        width=image.width,
        height=image.height,
        format=image.format,
        bytes=image.bytes,
        source=source,
        original_name=label[:512],
        train_opt_out=train_opt_out,
    )
    try:
        # A savepoint: a concurrent upload of the same bytes (another request or replica) may
        # insert the row first; that makes this one a duplicate, not a failed request.
        with db.begin_nested():
            db.add(row)
    except IntegrityError:
        winner = db.get(Image, image.sha256)
        if winner is None:
            raise
        seen_here[image.sha256] = label
        return _duplicate_of_stored(label, winner)
    seen_here[image.sha256] = label
    return FileResult(filename=label, status="stored", sha256=image.sha256)


def _duplicate_of_stored(label: str, existing: Image) -> FileResult:
    return FileResult(
        filename=label,
        status="duplicate",
        sha256=existing.sha256,
        duplicate_of=f"same bytes (sha256) as the corpus image stored "
        f"{existing.created_at:%Y-%m-%d %H:%M:%S} from {existing.original_name!r}",
    )


def _rejected(label: str, exc: UploadRejected) -> FileResult:
    return FileResult(filename=label, status="rejected", reason=exc.code, detail=exc.detail)


def get_or_raise(*, db: Session, sha256: str) -> Image:
    """The corpus image with this digest, or a 404 error."""
    image = db.get(Image, sha256.lower())
    if image is None:
        raise EvoqError("image_not_found", f"no corpus image with sha256 {sha256}", 404)
    return image


def get_page(*, db: Session, offset: int, limit: int) -> tuple[list[Image], int]:
    """A page of images, newest first, and the total count."""
    total = db.scalar(select(func.count()).select_from(Image)) or 0
    stmt = select(Image).order_by(Image.created_at.desc(), Image.sha256).offset(offset).limit(limit)
    return list(db.scalars(stmt)), total


def get_trainable(*, db: Session) -> list[Image]:
    """Images a round may use: everything not opted out of training."""
    stmt = select(Image).where(Image.train_opt_out.is_(False)).order_by(Image.sha256)
    return list(db.scalars(stmt))


def count_trainable(*, db: Session) -> int:
    """How many images a round may use."""
    stmt = select(func.count()).select_from(Image).where(Image.train_opt_out.is_(False))
    return db.scalar(stmt) or 0


def set_opt_out(*, db: Session, sha256: str, train_opt_out: bool) -> Image:
    """Keep an image out of (or let it back into) training rounds."""
    image = get_or_raise(db=db, sha256=sha256)
    image.train_opt_out = train_opt_out
    db.flush()
    return image


def delete(*, db: Session, store: ImageStore, sha256: str) -> None:
    """Remove an image's row, then its file (a crash in between leaves only an orphan file)."""
    image = get_or_raise(db=db, sha256=sha256)
    db.delete(image)
    db.flush()
    db.commit()
    store.delete(image.sha256)


def stats(*, db: Session) -> CorpusStats:
    """Totals, and how many images arrived since the last round started."""
    images, size, opted_out = db.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Image.bytes), 0),
            func.coalesce(func.sum(Image.train_opt_out.cast(Integer)), 0),
        ).select_from(Image)
    ).one()
    last_round_at = db.scalar(select(func.max(Round.created_at)))
    since = select(func.count()).select_from(Image)
    if last_round_at is not None:
        since = since.where(Image.created_at > last_round_at)
    return CorpusStats(
        images=images,
        bytes=int(size),
        train_opt_out=int(opted_out),
        since_last_round=db.scalar(since) or 0,
        last_round_at=last_round_at,
    )
