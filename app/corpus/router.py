"""Corpus endpoints: upload unlabeled images and archives, list, stats, delete."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from app.corpus import service
from app.corpus.errors import status_for
from app.corpus.limits import UploadLimits
from app.corpus.schemas import (
    CorpusStats,
    FileResult,
    ImageOut,
    ImagePage,
    ImagePatch,
    UploadResponse,
)
from app.corpus.store import ImageStore
from app.corpus.uploads import UploadedFile, multipart_openapi, read_multipart
from app.deps import (
    TOKEN_ERRORS,
    get_db,
    get_limits,
    get_store,
    require_corpus_write,
    require_read,
    require_upload,
)
from app.params import Offset

router = APIRouter(prefix="/v1/corpus", tags=["corpus"], responses=TOKEN_ERRORS)
READ = [Depends(require_read)]

ERRORS = {
    413: {"description": "Request too large or too many files (`error`, `detail`, `filename`)."},
    415: {"description": "Not multipart/form-data."},
    422: {
        "description": "Every file was rejected (`results` says why for each); a single "
        "rejected file answers with its own status (413, 415 or 422) and `filename`."
    },
}


@router.post(
    "/images",
    response_model=UploadResponse,
    summary="Upload unlabeled images and/or .zip archives",
    responses=ERRORS,
    dependencies=[Depends(require_upload)],
    openapi_extra=multipart_openapi(
        {
            "train_opt_out": {
                "type": "boolean",
                "default": False,
                "description": "Store the images but never train on them.",
            }
        }
    ),
)
async def upload_images(
    request: Request,
    db: Session = Depends(get_db),
    store: ImageStore = Depends(get_store),
    limits: UploadLimits = Depends(get_limits),
) -> JSONResponse:
    """Each file (and each archive member) is `stored`, a `duplicate` (identical bytes: same
    sha256) or `rejected` with a reason; files are on disk before their rows are written."""
    form, files = await read_multipart(request, limits)
    opt_out = str(form.get("train_opt_out", "false")).lower() in ("1", "true", "yes", "on")
    # Validation, fsync and database writes stay off the event loop (scoring keeps answering).
    results = await asyncio.to_thread(
        _ingest_and_commit, db, store, files, limits, train_opt_out=opt_out
    )
    counts = {s: sum(r.status == s for r in results) for s in ("stored", "duplicate", "rejected")}
    body = UploadResponse(
        results=results,
        stored=counts["stored"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"],
    ).model_dump(mode="json")
    if counts["rejected"] == len(results):
        # Nothing was stored: answer as a 4xx. One file keeps its own status (413/415/422).
        first = results[0]
        if len(results) == 1:
            error = {"error": first.reason, "detail": first.detail, "filename": first.filename}
            status = status_for(first.reason)
        else:
            error = {
                "error": "all_rejected",
                "detail": f"all {len(results)} files were rejected; see results",
            }
            status = 422
        return JSONResponse({**error, **body}, status_code=status)
    return JSONResponse(body)


def _ingest_and_commit(
    db: Session,
    store: ImageStore,
    files: list[UploadedFile],
    limits: UploadLimits,
    *,
    train_opt_out: bool,
) -> list[FileResult]:
    results = service.ingest(
        db=db, store=store, files=files, limits=limits, train_opt_out=train_opt_out
    )
    db.commit()
    return results


@router.get("", response_model=CorpusStats, summary="Corpus totals", dependencies=READ)
def corpus_stats(db: Session = Depends(get_db)) -> CorpusStats:
    """Totals, and how many images arrived since the last round."""
    return service.stats(db=db)


@router.get(
    "/limits",
    response_model=UploadLimits,
    summary="Upload limits of this server",
    dependencies=[Depends(require_upload)],
)
async def upload_limits(limits: UploadLimits = Depends(get_limits)) -> UploadLimits:
    """What one upload request may hold (clients split large uploads by these)."""
    return limits


@router.get(
    "/images",
    response_model=ImagePage,
    summary="List corpus images, newest first",
    dependencies=READ,
)
def list_images(
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=500),
    db: Session = Depends(get_db),
) -> ImagePage:
    """One page of stored images."""
    items, total = service.get_page(db=db, offset=offset, limit=limit)
    return ImagePage(
        items=[ImageOut.model_validate(i) for i in items], total=total, offset=offset, limit=limit
    )


@router.get(
    "/images/{sha256}/thumbnail",
    response_class=Response,
    summary="A small JPEG preview of a corpus image",
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "No such image."}},
    dependencies=READ,
)
def image_thumbnail(
    sha256: str,
    size: int = Query(160, ge=16, le=512),
    db: Session = Depends(get_db),
    store: ImageStore = Depends(get_store),
) -> Response:
    """The image shrunk to fit `size` x `size` pixels, re-encoded as JPEG (the console's
    thumbnails); the stored bytes themselves are not served."""
    from app.corpus.thumbnails import thumbnail_jpeg
    from app.errors import EvoqError

    image = service.get_or_raise(db=db, sha256=sha256)
    path = store.find(image.sha256)
    if path is None:
        raise EvoqError("image_not_found", f"the file of image {sha256} is missing", 404)
    return Response(
        thumbnail_jpeg(path, size),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.patch(
    "/images/{sha256}",
    response_model=ImageOut,
    summary="Opt a corpus image out of (or back into) training",
    responses={404: {"description": "No such image."}},
    dependencies=[Depends(require_corpus_write)],
)
def patch_image(sha256: str, body: ImagePatch, db: Session = Depends(get_db)) -> ImageOut:
    """Sets `train_opt_out`; rounds already running keep the pairs they sampled."""
    image = service.set_opt_out(db=db, sha256=sha256, train_opt_out=body.train_opt_out)
    db.commit()
    return ImageOut.model_validate(image)


@router.delete(
    "/images/{sha256}",
    status_code=204,
    summary="Delete a corpus image",
    responses={404: {"description": "No such image."}},
    dependencies=[Depends(require_corpus_write)],
)
def delete_image(
    sha256: str, db: Session = Depends(get_db), store: ImageStore = Depends(get_store)
) -> None:
    """Removes the row, then the file."""
    service.delete(db=db, store=store, sha256=sha256)
