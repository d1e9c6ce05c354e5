"""What both clients share: every endpoint as a request description, the answer parsing and
`ApiError`. Only sending differs between app/client/sync.py and app/client/aio.py."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel

from app.client.uploads import Part, multipart, to_part
from app.corpus.schemas import UploadResponse

if TYPE_CHECKING:
    from app.rounds.schemas import RoundConfigIn, RoundOut

T = TypeVar("T", bound=BaseModel)
# A path to an image or .zip file, raw bytes, (filename, bytes), or a PIL image.
ImageInput = Any


class ApiError(Exception):
    """An error answer of the API: its `error` code, HTTP status and `detail` (the whole body in
    `body`). Transport failures (server unreachable) are `ApiError("unreachable", 0, ...)`."""

    def __init__(self, code: str, status: int, detail: str, body: dict[str, Any] | None = None):
        super().__init__(f"{code} ({status}): {detail}")
        self.code = code
        self.status = status
        self.detail = detail
        self.body = body or {}


@dataclass(frozen=True)
class Request:
    """One API call as data: method, path and what it sends."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    admin: bool = False  # documents the endpoints that need the token


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("error") or f"http_{response.status_code}")
    detail = str(body.get("detail") or response.text[:500] or response.reason_phrase)
    return ApiError(code, response.status_code, detail, body)


def parse(response: httpx.Response, model: type[T] | None) -> T | None:
    """The answer as `model` (None: nothing), or the ApiError it carries."""
    if response.status_code >= 400:
        raise _error(response)
    return None if model is None else model.model_validate(response.json())


def parse_whoami(response: httpx.Response) -> dict[str, Any]:
    """The whoami answer as a dict, or the ApiError it carries."""
    if response.status_code >= 400:
        raise _error(response)
    return response.json()


def parse_upload(response: httpx.Response) -> UploadResponse:
    """An upload's answer; one whose files were all rejected is a 4xx that still lists every
    file's result, so it parses too."""
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and "results" in body:
            return UploadResponse.model_validate(body)
    return parse(response, UploadResponse)


def _config_json(config: RoundConfigIn | dict[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {"config": {}}
    if isinstance(config, BaseModel):  # a RoundConfigIn
        return {"config": config.model_dump(exclude_unset=True)}
    return {"config": dict(config)}


def round_schemas():  # noqa: ANN201 - the module, imported on first use
    """app.rounds.schemas, imported when a round call needs it: it pulls in the training library
    (torch), seconds that `evoq score --server` and `evoq upload` never need."""
    from app.rounds import schemas

    return schemas


class Build:
    """Every endpoint as a request description, shared by both clients."""

    @staticmethod
    def score(
        images: Sequence[ImageInput], mode: str, samples: int, explain: bool, store: bool
    ) -> Request:
        parts = [to_part(item, i) for i, item in enumerate(images)]
        form = {"mode": mode, "samples": str(samples), "explain": str(explain).lower()}
        form["store"] = str(store).lower()
        return Request("POST", "/v1/score", data=form, files=multipart(parts))

    @staticmethod
    def compare(a: ImageInput, b: ImageInput, mode: str, votes: int) -> Request:
        parts = [to_part(a, 0), to_part(b, 1)]
        data = {"mode": mode, "votes": str(votes)}
        return Request("POST", "/v1/compare", data=data, files=multipart(parts))

    @staticmethod
    def upload(parts: Sequence[Part], train_opt_out: bool) -> Request:
        data = {"train_opt_out": str(train_opt_out).lower()}
        return Request("POST", "/v1/corpus/images", data=data, files=multipart(parts))

    @staticmethod
    def images(offset: int, limit: int) -> Request:
        return Request("GET", "/v1/corpus/images", params={"offset": offset, "limit": limit})

    @staticmethod
    def start_round(config: RoundConfigIn | dict[str, Any] | None) -> Request:
        return Request("POST", "/v1/admin/rounds", json=_config_json(config), admin=True)

    @staticmethod
    def estimate_round(config: RoundConfigIn | dict[str, Any] | None) -> Request:
        return Request("POST", "/v1/admin/rounds/estimate", json=_config_json(config), admin=True)

    @staticmethod
    def get_round(round_id: int) -> Request:
        return Request("GET", f"/v1/admin/rounds/{round_id}", admin=True)

    @staticmethod
    def list_rounds(limit: int) -> Request:
        return Request("GET", "/v1/admin/rounds", params={"limit": limit}, admin=True)

    @staticmethod
    def cancel_round(round_id: int) -> Request:
        return Request("POST", f"/v1/admin/rounds/{round_id}/cancel", admin=True)

    @staticmethod
    def get_model(version_id: int) -> Request:
        return Request("GET", f"/v1/models/{version_id}")

    @staticmethod
    def activate(version_id: int, reason: str) -> Request:
        path = f"/v1/admin/models/{version_id}/activate"
        return Request("POST", path, json={"reason": reason}, admin=True)

    @staticmethod
    def rollback(reason: str) -> Request:
        return Request("POST", "/v1/admin/rollback", json={"reason": reason}, admin=True)


LIST_MODELS = Request("GET", "/v1/models")
LIMITS = Request("GET", "/v1/corpus/limits")
WHOAMI = Request("GET", "/v1/auth/whoami")
CORPUS = Request("GET", "/v1/corpus")


def finished(found: RoundOut, round_id: int, deadline: float, timeout: float) -> bool:
    """Whether a polled round is final; TimeoutError once `deadline` has passed."""
    from app.rounds.models import FINAL_ROUND_STATUSES  # sqlalchemy: imported on use

    if found.status in FINAL_ROUND_STATUSES:
        return True
    if time.monotonic() > deadline:
        raise TimeoutError(f"round {round_id} still {found.status} after {timeout}s")
    return False


class Base:
    """The URL, token and request arguments both clients send with."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def _headers(self, _request: Request) -> dict[str, str]:
        # Admin calls without a token go out anyway: the server's 401 says what is missing.
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _kwargs(self, request: Request) -> dict[str, Any]:
        return {
            "params": request.params,
            "json": request.json,
            "data": request.data,
            "files": request.files,
            "headers": self._headers(request),
        }
