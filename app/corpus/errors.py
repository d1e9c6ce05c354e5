"""Why an uploaded file or archive member was refused; each reason maps to one 4xx status."""

from __future__ import annotations

from enum import StrEnum

from app.errors import EvoqError


class Reason(StrEnum):
    """Machine-readable rejection codes, stable across releases (clients match on them)."""

    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    REQUEST_TOO_LARGE = "request_too_large"
    TOO_MANY_FILES = "too_many_files"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    CORRUPT_IMAGE = "corrupt_image"
    TOO_MANY_PIXELS = "too_many_pixels"
    MULTI_FRAME = "multi_frame"
    CORRUPT_ARCHIVE = "corrupt_archive"
    TOO_MANY_MEMBERS = "too_many_members"
    ARCHIVE_TOO_LARGE = "archive_too_large"
    COMPRESSION_RATIO = "compression_ratio"
    NESTED_ARCHIVE = "nested_archive"
    LINK_MEMBER = "link_member"
    SPECIAL_MEMBER = "special_member"
    ENCRYPTED_MEMBER = "encrypted_member"
    UNSUPPORTED_COMPRESSION = "unsupported_compression"


# Size and count limits are 413 (the client can split the upload); content problems 422/415.
_STATUS: dict[Reason, int] = {
    Reason.FILE_TOO_LARGE: 413,
    Reason.REQUEST_TOO_LARGE: 413,
    Reason.TOO_MANY_FILES: 413,
    Reason.TOO_MANY_MEMBERS: 413,
    Reason.ARCHIVE_TOO_LARGE: 413,
    Reason.COMPRESSION_RATIO: 413,
    Reason.TOO_MANY_PIXELS: 413,
    Reason.NOT_AN_IMAGE: 415,
    Reason.UNSUPPORTED_FORMAT: 415,
}


def status_for(code: str) -> int:
    """The HTTP status of a rejection code."""
    return _STATUS.get(Reason(code), 422)


class UploadRejected(EvoqError):
    """One file (or archive member) refused, naming the file and the problem."""

    def __init__(self, reason: Reason, detail: str, filename: str) -> None:
        super().__init__(
            code=reason.value,
            detail=detail,
            status_code=_STATUS.get(reason, 422),
            extra={"filename": filename},
        )
        self.reason = reason
        self.filename = filename
