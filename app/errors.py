"""One error shape for the whole API: services raise EvoqError subclasses, one handler answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EvoqError(Exception):
    """A typed failure that the API answers as `{"error": code, "detail": text, **extra}`."""

    def __init__(
        self,
        code: str,
        detail: str,
        status_code: int = 400,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status_code = status_code
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"error": self.code, "detail": self.detail, **self.extra}


class ErrorOut(BaseModel):
    """The body of every error answer; some errors add fields (`filename`, `problems`, ...)."""

    model_config = ConfigDict(extra="allow", title="Error")

    error: str = Field(description="Machine-readable code, stable across releases.")
    detail: str = Field(description="What went wrong, for people.")


DATABASE_RETRY_AFTER_S = 5


def database_unavailable(exc: Exception) -> EvoqError:
    """The answer while the database cannot be reached (restarting, failing over, down)."""
    return EvoqError(
        "database_unavailable",
        f"the database did not answer ({type(exc).__name__}); retry shortly",
        503,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


# Codes of the errors the HTTP layer itself raises (routing, body parsing), by status.
HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def http_error(status_code: int, detail: Any) -> EvoqError:
    """The one-shape error for an HTTP-layer failure (Starlette's HTTPException)."""
    code = HTTP_ERROR_CODES.get(status_code, f"http_{status_code}")
    return EvoqError(code, str(detail), status_code)
