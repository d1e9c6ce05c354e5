"""The asyncio client: `AsyncClient`, the same calls as `Client`, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from app.client.protocol import (
    CORPUS,
    LIMITS,
    LIST_MODELS,
    WHOAMI,
    ApiError,
    Base,
    Build,
    ImageInput,
    Request,
    T,
    finished,
    parse,
    parse_upload,
    parse_whoami,
    round_schemas,
)
from app.client.uploads import expand, merge, plan_batches, upload_parts
from app.corpus.limits import UploadLimits
from app.corpus.schemas import CorpusStats, ImagePage, UploadResponse
from app.registry.schemas import ActivationOut, ModelsOut, VersionOut
from app.scoring.schemas import CompareResponse, ScoreResponse

if TYPE_CHECKING:
    from app.rounds.schemas import RoundConfigIn, RoundEstimate, RoundList, RoundOut


class AsyncClient(Base):
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

    async def _send(self, request: Request) -> httpx.Response:
        try:
            return await self._http.request(request.method, request.path, **self._kwargs(request))
        except httpx.TransportError as exc:
            raise ApiError("unreachable", 0, f"{self.url}: {exc}") from exc

    async def call(self, request: Request, model: type[T] | None) -> T | None:
        """Send a built request and parse the answer as `model` (or raise ApiError)."""
        return parse(await self._send(request), model)

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
        request = Build.score(expand(images), mode, samples, explain, store)
        return await self.call(request, ScoreResponse)

    async def compare(
        self, a: ImageInput, b: ImageInput, *, mode: str = "auto", votes: int = 32
    ) -> CompareResponse:
        """Probability that `a` has better quality than `b`."""
        return await self.call(Build.compare(a, b, mode, votes), CompareResponse)

    async def limits(self) -> UploadLimits:
        """The server's upload limits."""
        return await self.call(LIMITS, UploadLimits)

    async def whoami(self) -> dict[str, Any]:
        """The token's role and what it may do."""
        return parse_whoami(await self._send(WHOAMI))

    async def corpus(self) -> CorpusStats:
        """Corpus totals."""
        return await self.call(CORPUS, CorpusStats)

    async def images(self, offset: int = 0, limit: int = 50) -> ImagePage:
        """One page of corpus images, newest first."""
        return await self.call(Build.images(offset, limit), ImagePage)

    async def upload(
        self, paths: Iterable[str | Path], *, train_opt_out: bool = False
    ) -> UploadResponse:
        """Add files to the corpus in as many requests as the server's limits need."""
        batches = plan_batches(upload_parts(paths), await self.limits())
        answers = [
            parse_upload(await self._send(Build.upload(batch, train_opt_out))) for batch in batches
        ]
        return merge(answers)


class AsyncRounds:
    """Evolution rounds (admin), awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def start(self, config: RoundConfigIn | dict[str, Any] | None = None) -> RoundOut:
        """Start a round."""
        return await self._c.call(Build.start_round(config), round_schemas().RoundOut)

    async def estimate(self, config: RoundConfigIn | dict[str, Any] | None = None) -> RoundEstimate:
        """The round's estimated time on the server's device, without starting it."""
        return await self._c.call(Build.estimate_round(config), round_schemas().RoundEstimate)

    async def get(self, round_id: int) -> RoundOut:
        """One round."""
        return await self._c.call(Build.get_round(round_id), round_schemas().RoundOut)

    async def list(self, limit: int = 50) -> RoundList:
        """Recent rounds, newest first."""
        return await self._c.call(Build.list_rounds(limit), round_schemas().RoundList)

    async def cancel(self, round_id: int) -> RoundOut:
        """Ask a round to stop."""
        return await self._c.call(Build.cancel_round(round_id), round_schemas().RoundOut)

    async def wait(self, round_id: int, *, timeout: float = 3600.0, poll: float = 1.0) -> RoundOut:
        """Poll until the round reaches a final status."""
        deadline = time.monotonic() + timeout
        while not finished(found := await self.get(round_id), round_id, deadline, timeout):
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
        return await self._c.call(Build.get_model(version_id), VersionOut)

    async def activate(self, version_id: int, reason: str = "") -> ActivationOut:
        """Serve this version (admin)."""
        return await self._c.call(Build.activate(version_id, reason), ActivationOut)

    async def rollback(self, reason: str = "") -> ActivationOut:
        """Serve the previously active version again (admin)."""
        return await self._c.call(Build.rollback(reason), ActivationOut)
