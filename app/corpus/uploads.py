"""Reading multipart uploads within the request limits, before any image is looked at."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from app.corpus.errors import Reason, UploadRejected
from app.corpus.limits import UploadLimits
from app.errors import EvoqError

FILES_FIELD = "files"

# OpenAPI schema of a multipart body with a `files` array and extra form fields; the routes
# parse the form themselves so the limits apply while reading, not after.


def multipart_openapi(fields: dict[str, dict], required: list[str] | None = None) -> dict:
    """`openapi_extra` describing a multipart body with `files` plus these form fields."""
    properties = {
        FILES_FIELD: {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "Image files (JPEG, PNG, WebP, BMP, TIFF by default).",
        },
        **fields,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": [FILES_FIELD, *(required or [])],
                    }
                }
            },
        }
    }


@dataclass(frozen=True)
class UploadedFile:
    """One uploaded part: the client's file name (a label only, never a path) and its bytes."""

    name: str
    data: bytes


async def read_body_within_limit(request: Request, limit: int) -> None:
    """Read the body, refusing it as soon as it exceeds `limit` bytes (also when chunked)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadRejected(
            Reason.REQUEST_TOO_LARGE,
            f"request body of {declared} bytes exceeds the limit of {limit} bytes",
            "(request)",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadRejected(
                Reason.REQUEST_TOO_LARGE,
                f"request body exceeds the limit of {limit} bytes",
                "(request)",
            )
        chunks.append(chunk)
    request._body = b"".join(chunks)  # noqa: SLF001 - Starlette re-reads the cached body


async def read_multipart(
    request: Request, limits: UploadLimits
) -> tuple[FormData, list[UploadedFile]]:
    """The form fields and the uploaded files, with request size and file count enforced."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise EvoqError(
            "not_multipart",
            f"expected a multipart/form-data body with `{FILES_FIELD}`, got {content_type or 'none'}",
            415,
        )
    await read_body_within_limit(request, limits.max_request_bytes)
    try:
        form = await request.form(max_files=limits.max_files_per_request, max_fields=64)
    except (MultiPartException, HTTPException) as exc:
        # Inside an app Starlette re-raises the parser's MultiPartException as HTTPException(400).
        message = str(getattr(exc, "message", None) or getattr(exc, "detail", exc))
        if "Too many files" in message:
            raise UploadRejected(
                Reason.TOO_MANY_FILES,
                f"more than {limits.max_files_per_request} files in one request",
                "(request)",
            ) from exc
        raise EvoqError("bad_multipart", f"malformed multipart body: {message}", 400) from exc
    files: list[UploadedFile] = []
    for index, part in enumerate(form.getlist(FILES_FIELD)):
        if not isinstance(part, UploadFile):
            raise EvoqError(
                "not_a_file", f"`{FILES_FIELD}` part {index} is a text field, not a file", 422
            )
        files.append(UploadedFile(part.filename or f"file-{index}", await part.read()))
    if not files:
        raise EvoqError("no_files", f"no `{FILES_FIELD}` parts in the request", 422)
    return form, files
