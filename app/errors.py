"""One error shape for the whole API: services raise EvoqError subclasses, one handler answers."""

from __future__ import annotations

from typing import Any


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
