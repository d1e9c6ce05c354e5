"""GET /v1/auth/whoami: the role a bearer token carries and what it may do (for the console)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from app.deps import Role, caller_role, get_settings_dep, permissions
from app.settings import Settings

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class Abilities(BaseModel):
    """What the caller may do on this server's configuration."""

    score: bool = Field(description="Score and compare images, list models and the corpus.")
    upload: bool = Field(description="Upload images to the corpus.")
    delete: bool = Field(description="Delete corpus images and opt them out of training.")
    admin: bool = Field(description="Rounds, activation, rollback, anchors, schedule.")


class WhoAmI(BaseModel):
    """The caller's role and abilities."""

    role: Role = Field(description="anonymous (no token), read, write or admin.")
    can: Abilities


@router.get(
    "/whoami",
    response_model=WhoAmI,
    summary="The role of the presented bearer token and what it allows",
    responses={403: {"description": "The token matches no role on this server."}},
)
async def whoami(
    role: Role = Depends(caller_role), settings: Settings = Depends(get_settings_dep)
) -> WhoAmI:
    """No token answers `anonymous`; a token that matches no configured one answers 403."""
    return WhoAmI(role=role, can=Abilities(**permissions(role, settings)))
