"""The synchronous client: `Client` with its `rounds` and `models` parts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
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


class Client(Base):
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

    def _send(self, request: Request) -> httpx.Response:
        try:
            return self._http.request(request.method, request.path, **self._kwargs(request))
        except httpx.TransportError as exc:
            raise ApiError("unreachable", 0, f"{self.url}: {exc}") from exc

    def call(self, request: Request, model: type[T] | None) -> T | None:
        """Send a built request and parse the answer as `model` (or raise ApiError)."""
        return parse(self._send(request), model)

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
        return self.call(Build.score(expand(images), mode, samples, explain, store), ScoreResponse)

    def compare(
        self, a: ImageInput, b: ImageInput, *, mode: str = "auto", votes: int = 32
    ) -> CompareResponse:
        """Probability that `a` has better quality than `b`."""
        return self.call(Build.compare(a, b, mode, votes), CompareResponse)

    def limits(self) -> UploadLimits:
        """The server's upload limits (GET /v1/corpus/limits)."""
        return self.call(LIMITS, UploadLimits)

    def whoami(self) -> dict[str, Any]:
        """The token's role and what it may do: {"role": ..., "can": {...}}."""
        return parse_whoami(self._send(WHOAMI))

    def corpus(self) -> CorpusStats:
        """Corpus totals."""
        return self.call(CORPUS, CorpusStats)

    def images(self, offset: int = 0, limit: int = 50) -> ImagePage:
        """One page of corpus images, newest first."""
        return self.call(Build.images(offset, limit), ImagePage)

    def upload(
        self,
        paths: Iterable[str | Path],
        *,
        train_opt_out: bool = False,
        on_batch: Callable[[int, UploadResponse], None] | None = None,
    ) -> UploadResponse:
        """Add image and .zip files (folders recursively) to the corpus, split into as many
        requests as the server's limits need; `on_batch(files_sent, batch_result)` after each."""
        batches = plan_batches(upload_parts(paths), self.limits())
        answers = []
        for batch in batches:
            answers.append(parse_upload(self._send(Build.upload(batch, train_opt_out))))
            if on_batch:
                on_batch(len(batch), answers[-1])
        return merge(answers)


class Rounds:
    """Evolution rounds (admin): `client.rounds.start/get/list/wait/cancel`."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def start(self, config: RoundConfigIn | dict[str, Any] | None = None) -> RoundOut:
        """Start a round; config fields not given keep their defaults."""
        return self._c.call(Build.start_round(config), round_schemas().RoundOut)

    def estimate(self, config: RoundConfigIn | dict[str, Any] | None = None) -> RoundEstimate:
        """The round's estimated time on the server's device, without starting it."""
        return self._c.call(Build.estimate_round(config), round_schemas().RoundEstimate)

    def get(self, round_id: int) -> RoundOut:
        """One round: status, progress, gate."""
        return self._c.call(Build.get_round(round_id), round_schemas().RoundOut)

    def list(self, limit: int = 50) -> RoundList:
        """Recent rounds, newest first."""
        return self._c.call(Build.list_rounds(limit), round_schemas().RoundList)

    def cancel(self, round_id: int) -> RoundOut:
        """Ask a round to stop."""
        return self._c.call(Build.cancel_round(round_id), round_schemas().RoundOut)

    def wait(self, round_id: int, *, timeout: float = 3600.0, poll: float = 1.0) -> RoundOut:
        """Poll until the round reaches a final status; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not finished(found := self.get(round_id), round_id, deadline, timeout):
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
        return self._c.call(Build.get_model(version_id), VersionOut)

    def activate(self, version_id: int, reason: str = "") -> ActivationOut:
        """Serve this version (admin)."""
        return self._c.call(Build.activate(version_id, reason), ActivationOut)

    def rollback(self, reason: str = "") -> ActivationOut:
        """Serve the previously active version again (admin)."""
        return self._c.call(Build.rollback(reason), ActivationOut)
