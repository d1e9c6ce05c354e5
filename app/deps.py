"""FastAPI dependencies shared by every router: settings, database session, store, limits, admin."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.corpus.limits import UploadLimits, limits_from_settings
from app.corpus.store import ImageStore
from app.db import session_scope
from app.errors import EvoqError
from app.settings import Settings

# Dependencies that do no I/O are async: FastAPI runs plain-def dependencies in a thread pool,
# a thread hop per dependency on every request.


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


def get_db() -> Iterator[Session]:
    """One database session per request, committed when the handler succeeds."""
    with session_scope() as session:
        yield session


def image_store(settings: Settings) -> ImageStore:
    """The content-addressed image store in the data directory."""
    return ImageStore(settings.data_dir.resolve() / "images")


async def get_store(settings: Settings = Depends(get_settings_dep)) -> ImageStore:
    """The image store, as a dependency."""
    return image_store(settings)


async def get_limits(settings: Settings = Depends(get_settings_dep)) -> UploadLimits:
    """The configured upload limits."""
    return limits_from_settings(settings)


# Answers every admin operation may give, documented on the admin routers.
ADMIN_ERRORS: dict[int | str, dict] = {
    401: {"description": "No bearer token."},
    403: {"description": "Wrong bearer token."},
    503: {"description": "EVOQ_ADMIN_TOKEN is not set: admin endpoints are disabled."},
}

_bearer = HTTPBearer(auto_error=False, description="EVOQ_ADMIN_TOKEN")


async def require_admin(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    settings: Settings = Depends(get_settings_dep),
) -> str:
    """401 without a bearer token, 403 with a wrong one (constant-time comparison)."""
    if not settings.admin_token:
        raise EvoqError("admin_disabled", "EVOQ_ADMIN_TOKEN is not set on this server", 503)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise EvoqError(
            "unauthorized",
            "admin endpoints need `Authorization: Bearer <EVOQ_ADMIN_TOKEN>`",
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(credentials.credentials.encode(), settings.admin_token.encode()):
        raise EvoqError("forbidden", "wrong admin token", 403)
    return "admin"
