"""Python client of the EvoQuality API (httpx): `Client` (sync) and `AsyncClient` share the
request building and answer parsing; only sending differs.

    from app.client import Client
    with Client("http://127.0.0.1:8000", token="...") as api:
        api.score(["a.jpg", "photos/"], mode="sampled").results[0].score
        api.rounds.wait(api.rounds.start({"pairs": 2000}).id)
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel

from app.corpus.limits import UploadLimits
from app.corpus.schemas import CorpusStats, FileResult, ImagePage, UploadResponse
from app.registry.schemas import ActivationOut, ModelsOut, VersionOut
from app.scoring.schemas import CompareResponse, ScoreResponse

if TYPE_CHECKING:
    from app.rounds.schemas import RoundConfigIn, RoundEstimate, RoundList, RoundOut

__all__ = ["ApiError", "AsyncClient", "Client", "ImageInput", "image_files", "plan_batches"]

T = TypeVar("T", bound=BaseModel)
# A path to an image or .zip file, raw bytes, (filename, bytes), or a PIL image.
ImageInput = Any
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".zip"})
# Room for multipart headers and form fields on top of the file bytes of one request.
_MULTIPART_SLACK = 64 * 1024


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
class _Request:
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    admin: bool = False  # documents the endpoints that need the token


@dataclass
class _Part:
    """One file of a request: bytes in memory, or a file read only when its batch is sent."""

    name: str
    data: bytes | None = None
    path: Path | None = None
    images: int = 1  # a zip counts one per member against max_files_per_request

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


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


def _parse(response: httpx.Response, model: type[T] | None) -> T | None:
    if response.status_code >= 400:
        raise _error(response)
    return None if model is None else model.model_validate(response.json())


def _whoami(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise _error(response)
    return response.json()


def _parse_upload(response: httpx.Response) -> UploadResponse:
    # An upload whose files were all rejected is a 4xx that still lists every file's result.
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and "results" in body:
            return UploadResponse.model_validate(body)
    return _parse(response, UploadResponse)


def _to_part(item: ImageInput, index: int) -> _Part:
    if isinstance(item, str | Path):
        path = Path(item)
        return _Part(path.name, path=path)
    if isinstance(item, bytes | bytearray):
        return _Part(f"image-{index}.bin", bytes(item))
    if isinstance(item, tuple) and len(item) == 2:
        return _Part(str(item[0]), bytes(item[1]))
    if hasattr(item, "save"):  # a PIL image
        buffer = io.BytesIO()
        item.save(buffer, format="PNG")
        return _Part(f"image-{index}.png", buffer.getvalue())
    raise TypeError(f"cannot send {type(item).__name__} as an image")


def _multipart(parts: Sequence[_Part]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("files", (p.name, p.read(), mimetypes.guess_type(p.name)[0] or "application/octet-stream"))
        for p in parts
    ]


def image_files(paths: Iterable[str | Path]) -> Iterator[tuple[str, Path]]:
    """(label, path) of files named, and of image or .zip files under folders (recursively,
    sorted; labelled by their path inside the folder)."""
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            for file in sorted(p for p in found if p.is_file()):
                yield file.relative_to(path).as_posix(), file
        else:
            yield path.name, path


def _zip_members(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            return max(1, sum(not i.is_dir() for i in archive.infolist()))
    except (OSError, zipfile.BadZipFile):
        return 1  # the server rejects it with the reason


def plan_batches(parts: Sequence[_Part], limits: UploadLimits) -> list[list[_Part]]:
    """Consecutive groups that each fit one request: at most `max_files_per_request` images
    (zip members counted) and `max_request_bytes` bytes. A part too large for any request goes
    alone, so the server names it in its answer."""
    budget = max(1, limits.max_request_bytes - _MULTIPART_SLACK)
    batches: list[list[_Part]] = []
    current: list[_Part] = []
    size = count = 0
    for part in parts:
        nbytes = part.size + len(part.name) + 256
        if current and (
            size + nbytes > budget or count + part.images > limits.max_files_per_request
        ):
            batches.append(current)
            current, size, count = [], 0, 0
        current.append(part)
        size += nbytes
        count += part.images
    if current:
        batches.append(current)
    return batches


def _upload_parts(paths: Iterable[str | Path]) -> list[_Part]:
    return [
        _Part(name, path=path, images=_zip_members(path) if path.suffix.lower() == ".zip" else 1)
        for name, path in image_files(paths)
    ]


def _merge(responses: Sequence[UploadResponse]) -> UploadResponse:
    results: list[FileResult] = [r for resp in responses for r in resp.results]
    return UploadResponse(
        results=results,
        stored=sum(r.stored for r in responses),
        duplicates=sum(r.duplicates for r in responses),
        rejected=sum(r.rejected for r in responses),
    )


def _config_json(config: RoundConfigIn | dict[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {"config": {}}
    if isinstance(config, BaseModel):  # a RoundConfigIn
        return {"config": config.model_dump(exclude_unset=True)}
    return {"config": dict(config)}


def _rounds():  # noqa: ANN202 - the module, imported on first use
    """app.rounds.schemas, imported when a round call needs it: it pulls in the training library
    (torch), seconds that `evoq score --server` and `evoq upload` never need."""
    from app.rounds import schemas

    return schemas


# Every endpoint as a request description, shared by both clients.
class _Build:
    @staticmethod
    def score(
        images: Sequence[ImageInput], mode: str, samples: int, explain: bool, store: bool
    ) -> _Request:
        parts = [_to_part(item, i) for i, item in enumerate(images)]
        form = {"mode": mode, "samples": str(samples), "explain": str(explain).lower()}
        form["store"] = str(store).lower()
        return _Request("POST", "/v1/score", data=form, files=_multipart(parts))

    @staticmethod
    def compare(a: ImageInput, b: ImageInput, mode: str, votes: int) -> _Request:
        parts = [_to_part(a, 0), _to_part(b, 1)]
        data = {"mode": mode, "votes": str(votes)}
        return _Request("POST", "/v1/compare", data=data, files=_multipart(parts))

    @staticmethod
    def upload(parts: Sequence[_Part], train_opt_out: bool) -> _Request:
        data = {"train_opt_out": str(train_opt_out).lower()}
        return _Request("POST", "/v1/corpus/images", data=data, files=_multipart(parts))

    @staticmethod
    def images(offset: int, limit: int) -> _Request:
        return _Request("GET", "/v1/corpus/images", params={"offset": offset, "limit": limit})

    @staticmethod
    def start_round(config: RoundConfigIn | dict[str, Any] | None) -> _Request:
        return _Request("POST", "/v1/admin/rounds", json=_config_json(config), admin=True)

    @staticmethod
    def estimate_round(config: RoundConfigIn | dict[str, Any] | None) -> _Request:
        return _Request("POST", "/v1/admin/rounds/estimate", json=_config_json(config), admin=True)

    @staticmethod
    def get_round(round_id: int) -> _Request:
        return _Request("GET", f"/v1/admin/rounds/{round_id}", admin=True)

    @staticmethod
    def list_rounds(limit: int) -> _Request:
        return _Request("GET", "/v1/admin/rounds", params={"limit": limit}, admin=True)

    @staticmethod
    def cancel_round(round_id: int) -> _Request:
        return _Request("POST", f"/v1/admin/rounds/{round_id}/cancel", admin=True)

    @staticmethod
    def get_model(version_id: int) -> _Request:
        return _Request("GET", f"/v1/models/{version_id}")

    @staticmethod
    def activate(version_id: int, reason: str) -> _Request:
        path = f"/v1/admin/models/{version_id}/activate"
        return _Request("POST", path, json={"reason": reason}, admin=True)

    @staticmethod
    def rollback(reason: str) -> _Request:
        return _Request("POST", "/v1/admin/rollback", json={"reason": reason}, admin=True)


LIST_MODELS = _Request("GET", "/v1/models")
LIMITS = _Request("GET", "/v1/corpus/limits")
WHOAMI = _Request("GET", "/v1/auth/whoami")
CORPUS = _Request("GET", "/v1/corpus")


def _finished(found: RoundOut, round_id: int, deadline: float, timeout: float) -> bool:
    from app.rounds.models import FINAL_ROUND_STATUSES  # sqlalchemy: imported on use

    if found.status in FINAL_ROUND_STATUSES:
        return True
    if time.monotonic() > deadline:
        raise TimeoutError(f"round {round_id} still {found.status} after {timeout}s")
    return False


def _expand(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    if isinstance(images, str | Path | bytes | bytearray | tuple) or hasattr(images, "save"):
        images = [images]
    out: list[ImageInput] = []
    for item in images:
        if isinstance(item, str | Path) and Path(item).is_dir():
            found = image_files([item])
            out.extend((name, p.read_bytes()) for name, p in found if p.suffix.lower() != ".zip")
        else:
            out.append(item)
    return out


class _Base:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def _headers(self, _request: _Request) -> dict[str, str]:
        # Admin calls without a token go out anyway: the server's 401 says what is missing.
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _kwargs(self, request: _Request) -> dict[str, Any]:
        return {
            "params": request.params,
            "json": request.json,
            "data": request.data,
            "files": request.files,
            "headers": self._headers(request),
        }


class Client(_Base):
    """A synchronous client. `Client(url, token=None)`; use as a context manager or `close()`."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, token)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)
        self.rounds = Rounds(self)
        self.models = Models(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, request: _Request) -> httpx.Response:
        try:
            return self._http.request(request.method, request.path, **self._kwargs(request))
        except httpx.TransportError as exc:
            raise ApiError("unreachable", 0, f"{self.url}: {exc}") from exc

    def call(self, request: _Request, model: type[T] | None) -> T | None:
        """Send a built request and parse the answer as `model` (or raise ApiError)."""
        return _parse(self._send(request), model)

    def score(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        mode: str = "auto",
        samples: int = 8,
        explain: bool = False,
        store: bool = False,
    ) -> ScoreResponse:
        """Score images (paths, folders, bytes, (name, bytes) or PIL images) in one request."""
        return self.call(
            _Build.score(_expand(images), mode, samples, explain, store), ScoreResponse
        )

    def compare(
        self, a: ImageInput, b: ImageInput, *, mode: str = "auto", votes: int = 32
    ) -> CompareResponse:
        """Probability that `a` has better quality than `b`."""
        return self.call(_Build.compare(a, b, mode, votes), CompareResponse)

    def limits(self) -> UploadLimits:
        """The server's upload limits (GET /v1/corpus/limits)."""
        return self.call(LIMITS, UploadLimits)

    def whoami(self) -> dict[str, Any]:
        """The token's role and what it may do: {"role": ..., "can": {...}}."""
        return _whoami(self._send(WHOAMI))

    def corpus(self) -> CorpusStats:
        """Corpus totals."""
        return self.call(CORPUS, CorpusStats)

    def images(self, offset: int = 0, limit: int = 50) -> ImagePage:
        """One page of corpus images, newest first."""
        return self.call(_Build.images(offset, limit), ImagePage)

    def upload(
        self,
        paths: Iterable[str | Path],
        *,
        train_opt_out: bool = False,
        on_batch: Callable[[int, UploadResponse], None] | None = None,
    ) -> UploadResponse:
        """Add image and .zip files (folders recursively) to the corpus, split into as many
        requests as the server's limits need; `on_batch(files_sent, batch_result)` after each."""
        batches = plan_batches(_upload_parts(paths), self.limits())
        answers = []
        for batch in batches:
            answers.append(_parse_upload(self._send(_Build.upload(batch, train_opt_out))))
            if on_batch:
                on_batch(len(batch), answers[-1])
        return _merge(answers)


class Rounds:
    """Evolution rounds (admin): `client.rounds.start/get/list/wait/cancel`."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def start(self, config: RoundConfigIn | dict[str, Any] | None = None) -> RoundOut:
        """Start a round; config fields not given keep their defaults."""
        return self._c.call(_Build.start_round(config), _rounds().RoundOut)

    def estimate(self, config: RoundConfigIn | dict[str, Any] | None = None) -> RoundEstimate:
        """The round's estimated time on the server's device, without starting it."""
        return self._c.call(_Build.estimate_round(config), _rounds().RoundEstimate)

    def get(self, round_id: int) -> RoundOut:
        """One round: status, progress, gate."""
        return self._c.call(_Build.get_round(round_id), _rounds().RoundOut)

    def list(self, limit: int = 50) -> RoundList:
        """Recent rounds, newest first."""
        return self._c.call(_Build.list_rounds(limit), _rounds().RoundList)

    def cancel(self, round_id: int) -> RoundOut:
        """Ask a round to stop."""
        return self._c.call(_Build.cancel_round(round_id), _rounds().RoundOut)

    def wait(self, round_id: int, *, timeout: float = 3600.0, poll: float = 1.0) -> RoundOut:
        """Poll until the round reaches a final status; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not _finished(found := self.get(round_id), round_id, deadline, timeout):
            time.sleep(poll)
        return found


class Models:
    """The model registry: `client.models.list/get/activate/rollback`."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def list(self) -> ModelsOut:
        """Every version, the active one and the activation history."""
        return self._c.call(LIST_MODELS, ModelsOut)

    def get(self, version_id: int) -> VersionOut:
        """One version."""
        return self._c.call(_Build.get_model(version_id), VersionOut)

    def activate(self, version_id: int, reason: str = "") -> ActivationOut:
        """Serve this version (admin)."""
        return self._c.call(_Build.activate(version_id, reason), ActivationOut)

    def rollback(self, reason: str = "") -> ActivationOut:
        """Serve the previously active version again (admin)."""
        return self._c.call(_Build.rollback(reason), ActivationOut)


class AsyncClient(_Base):
    """The asyncio twin of `Client`: the same methods, awaited."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, token)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)
        self.rounds = AsyncRounds(self)
        self.models = AsyncModels(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(self, request: _Request) -> httpx.Response:
        try:
            return await self._http.request(request.method, request.path, **self._kwargs(request))
        except httpx.TransportError as exc:
            raise ApiError("unreachable", 0, f"{self.url}: {exc}") from exc

    async def call(self, request: _Request, model: type[T] | None) -> T | None:
        """Send a built request and parse the answer as `model` (or raise ApiError)."""
        return _parse(await self._send(request), model)

    async def score(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        mode: str = "auto",
        samples: int = 8,
        explain: bool = False,
        store: bool = False,
    ) -> ScoreResponse:
        """Score images in one request (see `Client.score`)."""
        request = _Build.score(_expand(images), mode, samples, explain, store)
        return await self.call(request, ScoreResponse)

    async def compare(
        self, a: ImageInput, b: ImageInput, *, mode: str = "auto", votes: int = 32
    ) -> CompareResponse:
        """Probability that `a` has better quality than `b`."""
        return await self.call(_Build.compare(a, b, mode, votes), CompareResponse)

    async def limits(self) -> UploadLimits:
        """The server's upload limits."""
        return await self.call(LIMITS, UploadLimits)

    async def whoami(self) -> dict[str, Any]:
        """The token's role and what it may do."""
        return _whoami(await self._send(WHOAMI))

    async def corpus(self) -> CorpusStats:
        """Corpus totals."""
        return await self.call(CORPUS, CorpusStats)

    async def images(self, offset: int = 0, limit: int = 50) -> ImagePage:
        """One page of corpus images, newest first."""
        return await self.call(_Build.images(offset, limit), ImagePage)

    async def upload(
        self, paths: Iterable[str | Path], *, train_opt_out: bool = False
    ) -> UploadResponse:
        """Add files to the corpus in as many requests as the server's limits need."""
        batches = plan_batches(_upload_parts(paths), await self.limits())
        answers = [
            _parse_upload(await self._send(_Build.upload(batch, train_opt_out)))
            for batch in batches
        ]
        return _merge(answers)


class AsyncRounds:
    """Evolution rounds (admin), awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def start(self, config: RoundConfigIn | dict[str, Any] | None = None) -> RoundOut:
        """Start a round."""
        return await self._c.call(_Build.start_round(config), _rounds().RoundOut)

    async def estimate(self, config: RoundConfigIn | dict[str, Any] | None = None) -> RoundEstimate:
        """The round's estimated time on the server's device, without starting it."""
        return await self._c.call(_Build.estimate_round(config), _rounds().RoundEstimate)

    async def get(self, round_id: int) -> RoundOut:
        """One round."""
        return await self._c.call(_Build.get_round(round_id), _rounds().RoundOut)

    async def list(self, limit: int = 50) -> RoundList:
        """Recent rounds, newest first."""
        return await self._c.call(_Build.list_rounds(limit), _rounds().RoundList)

    async def cancel(self, round_id: int) -> RoundOut:
        """Ask a round to stop."""
        return await self._c.call(_Build.cancel_round(round_id), _rounds().RoundOut)

    async def wait(self, round_id: int, *, timeout: float = 3600.0, poll: float = 1.0) -> RoundOut:
        """Poll until the round reaches a final status."""
        deadline = time.monotonic() + timeout
        while not _finished(found := await self.get(round_id), round_id, deadline, timeout):
            await asyncio.sleep(poll)
        return found


class AsyncModels:
    """The model registry, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def list(self) -> ModelsOut:
        """Every version, the active one and the activation history."""
        return await self._c.call(LIST_MODELS, ModelsOut)

    async def get(self, version_id: int) -> VersionOut:
        """One version."""
        return await self._c.call(_Build.get_model(version_id), VersionOut)

    async def activate(self, version_id: int, reason: str = "") -> ActivationOut:
        """Serve this version (admin)."""
        return await self._c.call(_Build.activate(version_id, reason), ActivationOut)

    async def rollback(self, reason: str = "") -> ActivationOut:
        """Serve the previously active version again (admin)."""
        return await self._c.call(_Build.rollback(reason), ActivationOut)
