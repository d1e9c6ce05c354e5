"""POST /v1/score and POST /v1/compare."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from app.corpus.limits import UploadLimits
from app.corpus.uploads import multipart_openapi, read_multipart
from app.deps import TOKEN_ERRORS, authorize_request, get_limits, require_read
from app.errors import EvoqError
from app.scoring import service
from app.scoring.schemas import (
    CompareParams,
    CompareResponse,
    ScoreParams,
    ScoreResponse,
    ScoreResult,
)
from app.scoring.serving import CompareJob

router = APIRouter(
    prefix="/v1", tags=["scoring"], dependencies=[Depends(require_read)], responses=TOKEN_ERRORS
)

ERRORS = {
    413: {"description": "Too large: file, request, pixels or file count (`filename` names it)."},
    415: {"description": "Not an image of an allowed format, or not multipart."},
    422: {"description": "Corrupt, empty or truncated image, or invalid parameters."},
    503: {"description": "Queue full or model not ready; retry after `Retry-After` seconds."},
}


def _params(model: type, form) -> object:  # noqa: ANN001
    fields = {k: v for k, v in form.items() if k in model.model_fields}
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise EvoqError("invalid_parameters", problems, 422) from exc


def _max_pixels(request: Request) -> int:
    """service.pixel_budget of the model serving now; after a hot swap to a smaller bound the
    model still resizes."""
    loaded = request.app.state.scorer.slot.current
    model = loaded.model if loaded is not None else None
    return service.pixel_budget(model, request.app.state.settings.max_pixels)


def _schema(model: type) -> dict:
    return {k: v for k, v in model.model_json_schema()["properties"].items()}


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Score the quality of one or more images",
    responses=ERRORS,
    openapi_extra=multipart_openapi(_schema(ScoreParams)),
)
async def score(request: Request, limits: UploadLimits = Depends(get_limits)) -> ScoreResponse:
    """One result per image in upload order, each naming the model version that scored it.
    Any invalid file fails the whole request with a 4xx naming that file."""
    started = time.perf_counter()
    form, files = await read_multipart(request, limits)
    params: ScoreParams = _params(ScoreParams, form)
    if params.store:  # storing adds to the corpus: the upload role, checked before any work
        authorize_request(request, "upload")
    loaded = request.app.state.scorer.slot.current
    images, inputs = await asyncio.to_thread(
        service.validate_for_model,
        files,
        limits,
        loaded.model if loaded is not None else None,
        request.app.state.settings.max_pixels,
    )
    served = await service.score_images(
        request.app.state.scorer,
        inputs,
        mode=params.mode,
        samples=params.samples,
        explain=params.explain and params.mode == "sampled",
    )
    stored: list[bool] | list[None] = [None] * len(images)
    if params.store:  # database and fsync work stays off the event loop
        stored = await asyncio.to_thread(
            service.store_scored,
            request.app.state.settings,
            files,
            images,
            train_opt_out=params.train_opt_out,
        )
    results = [
        ScoreResult(
            filename=upload.name,
            sha256=image.sha256,
            score=out.score,
            raw_score=out.raw_score,
            scale=out.scale,
            std=out.result.std,
            level=service.level_for(out.score),
            valid=out.result.valid,
            n=out.result.n,
            mode=out.mode,
            tokens=out.result.tokens,
            model_version=out.version_id,
            stored=stored[i],
            explanations=out.result.texts if params.explain else None,
        )
        for i, (upload, image, out) in enumerate(zip(files, images, served, strict=True))
    ]
    return ScoreResponse(results=results, elapsed_ms=(time.perf_counter() - started) * 1000)


@router.post(
    "/compare",
    response_model=CompareResponse,
    summary="Probability that the first of two images has better quality",
    responses=ERRORS,
    openapi_extra=multipart_openapi(_schema(CompareParams)),
)
async def compare(request: Request, limits: UploadLimits = Depends(get_limits)) -> CompareResponse:
    """Exactly two files: `files[0]` is the first image, `files[1]` the second."""
    started = time.perf_counter()
    form, files = await read_multipart(request, limits)
    params: CompareParams = _params(CompareParams, form)
    if len(files) != 2:
        raise EvoqError("need_two_files", f"compare takes exactly 2 files, got {len(files)}", 422)
    first, second = await service.validate_off_loop(files, limits, max_pixels=_max_pixels(request))
    served = await request.app.state.scorer.submit(
        CompareJob(
            service.pixels(first), service.pixels(second), mode=params.mode, votes=params.votes
        )
    )
    result = served.result
    sampled = params.mode == "sampled"
    return CompareResponse(
        p_first_better=result.p_first,
        mode=served.mode,
        votes_first=result.votes_a if sampled else None,
        votes_second=result.votes_b if sampled else None,
        invalid_votes=result.invalid if sampled else None,
        first_sha256=first.sha256,
        second_sha256=second.sha256,
        model_version=served.version_id,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )
