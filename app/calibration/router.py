"""Admin endpoints of the score scale: see and replace the anchor set."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from app.calibration import replace, service
from app.calibration.schemas import AnchorOut, AnchorSetOut, AnchorsOut
from app.corpus.limits import UploadLimits
from app.corpus.uploads import multipart_openapi, read_multipart
from app.db import session_scope
from app.deps import get_db, get_limits, require_admin
from app.errors import EvoqError

router = APIRouter(
    prefix="/v1/admin/anchors", tags=["admin"], dependencies=[Depends(require_admin)]
)


def anchors_out(db: Session) -> AnchorsOut:
    """The current set with its anchors, and the history."""
    current = service.current_set(db=db)
    rows = service.images(db=db, anchor_set_id=current.id) if current else []
    return AnchorsOut(
        current=AnchorSetOut.model_validate(current) if current else None,
        anchors=[AnchorOut.model_validate(r) for r in rows],
        history=[AnchorSetOut.model_validate(s) for s in service.history(db=db)],
    )


@router.get("", response_model=AnchorsOut, summary="The anchor set and its history")
def get_anchors(db: Session = Depends(get_db)) -> AnchorsOut:
    """The current anchor set (targets on the reference scale) and every earlier set."""
    return anchors_out(db)


@router.post(
    "",
    response_model=AnchorsOut,
    summary="Replace the anchor set (uploaded images and/or sha256s of corpus images)",
    responses={
        409: {"description": "The serving version changed while scoring; retry."},
        413: {"description": "Too large: file, request, pixels or file count."},
        422: {"description": "A bad image, an unknown or malformed sha256, too few anchors."},
        503: {"description": "No model is serving yet."},
    },
    openapi_extra=multipart_openapi(
        {
            "sha256": {
                "type": "string",
                "description": "sha256s of corpus images (repeat the field or separate by commas).",
            },
            "reason": {"type": "string", "description": "Why the set changes (recorded)."},
        }
    ),
)
async def replace_anchors(
    request: Request,
    actor: str = Depends(require_admin),
    limits: UploadLimits = Depends(get_limits),
) -> AnchorsOut:
    """The serving version scores the new anchors; its calibrated scores become their targets,
    so the reference scale stays the same. The old set stays in the history."""
    form, files = await read_multipart(request, limits)
    sha256s = replace.parse_sha256s([str(v) for v in form.getlist("sha256")])
    reason = str(form.get("reason", "") or "replaced by an operator")[:1000]
    if not files and not sha256s:
        raise EvoqError("no_anchors", "send image `files` and/or `sha256` fields", 422)
    await replace.replace_anchor_set(
        settings=request.app.state.settings,
        scorer=request.app.state.scorer,
        files=files,
        sha256s=sha256s,
        limits=limits,
        actor=actor,
        reason=reason,
    )
    with session_scope() as db:
        return anchors_out(db)
