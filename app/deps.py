"""FastAPI dependencies shared by every router: settings, database session, store, limits, and
one authorization dependency per role (read, corpus upload, corpus write, admin)."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.corpus.limits import UploadLimits, limits_from_settings
from app.corpus.store import ImageStore
from app.db import session_scope
from app.errors import EvoqError
from app.settings import Settings

Role = Literal["anonymous", "read", "write", "admin"]
Action = Literal["score", "upload", "delete", "admin"]
ACTIONS: tuple[Action, ...] = ("score", "upload", "delete", "admin")

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
# Answers of the read and corpus-write endpoints once a token guards them.
TOKEN_ERRORS: dict[int | str, dict] = {
    401: {"description": "No bearer token, and this server needs one for this call."},
    403: {"description": "A token that matches no role, or a role that may not do this."},
}

_bearer = HTTPBearer(
    auto_error=False,
    description="EVOQ_ADMIN_TOKEN, EVOQ_WRITE_TOKEN or EVOQ_READ_TOKEN (see the README's Security)",
)

# Roles in increasing power: each one may do what the ones before it may.
ROLES: tuple[Role, ...] = ("anonymous", "read", "write", "admin")


def _presented(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    return credentials.credentials


def role_of(token: str | None, settings: Settings) -> Role | None:
    """The strongest role whose configured token equals `token` (constant-time comparisons);
    "anonymous" without a token, None for a token that matches no role."""
    if token is None:
        return "anonymous"
    matched: Role | None = None
    for role, secret in (
        ("read", settings.read_token),
        ("write", settings.write_token),
        ("admin", settings.admin_token),
    ):
        # Every configured token is compared, whatever matched before (no early exit).
        if secret and hmac.compare_digest(token.encode(), secret.encode()):
            matched = role
    return matched


def _at_least(role: Role, needed: Role) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def needed_role(action: Action, settings: Settings) -> Role:
    """The weakest role allowed to do `action` on this server's configuration."""
    any_token = bool(settings.admin_token or settings.write_token or settings.read_token)
    reading: Role = "read" if settings.read_token else "anonymous"
    if action == "score":
        return reading
    if action == "upload":
        return "write" if settings.write_token else reading
    if action == "delete":  # opt-out and delete: never anonymous once any token exists
        return "write" if any_token else "anonymous"
    return "admin"


def permissions(role: Role, settings: Settings) -> dict[Action, bool]:
    """What `role` may do on this server (GET /v1/auth/whoami shows it)."""
    allowed = {a: _at_least(role, needed_role(a, settings)) for a in ACTIONS}
    if not settings.admin_token:  # admin endpoints are disabled without their token
        allowed["admin"] = False
    return allowed


def _authorize(
    action: Action, credentials: HTTPAuthorizationCredentials | None, s: Settings
) -> Role:
    """The caller's role if it may do `action`: else 401 (no token) or 403 (wrong token or role)."""
    role = role_of(_presented(credentials), s)
    if role is None:
        raise EvoqError("forbidden", "the bearer token matches no role on this server", 403)
    needed = needed_role(action, s)
    if _at_least(role, needed):
        return role
    if role == "anonymous":
        raise EvoqError(
            "unauthorized",
            f"this call needs `Authorization: Bearer <token>` of the {needed} role or above",
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    raise EvoqError("forbidden", f"the {role} token may not do this; it needs {needed}", 403)


def authorize_request(request: Request, action: Action) -> Role:
    """`_authorize` for a check inside a handler (e.g. /v1/score with store=true uploads)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    credentials = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
        if scheme and token.strip()
        else None
    )
    return _authorize(action, credentials, request.app.state.settings)


async def require_read(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    settings: Settings = Depends(get_settings_dep),
) -> str:
    """Scores, comparisons and listings: open unless EVOQ_READ_TOKEN is set."""
    return _authorize("score", credentials, settings)


async def require_upload(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    settings: Settings = Depends(get_settings_dep),
) -> str:
    """Corpus uploads: the write token when EVOQ_WRITE_TOKEN is set, else as reading."""
    return _authorize("upload", credentials, settings)


async def require_corpus_write(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    settings: Settings = Depends(get_settings_dep),
) -> str:
    """Opt-out and delete: the write (or admin) token once any token is configured."""
    return _authorize("delete", credentials, settings)


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


async def caller_role(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    settings: Settings = Depends(get_settings_dep),
) -> Role:
    """The caller's role; 403 for a token that matches none."""
    role = role_of(_presented(credentials), settings)
    if role is None:
        raise EvoqError("forbidden", "the bearer token matches no role on this server", 403)
    return role
