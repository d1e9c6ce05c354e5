"""The serving side of the model: one slot holding the active version, hot swaps, micro-batching."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from PIL import Image

from app.calibration.service import VersionScale
from app.errors import EvoqError
from app.observability import (
    ACTIVE_VERSION,
    BATCH_SECONDS,
    BATCH_SIZE,
    IMAGES_SCORED,
    MODEL_SWAPS,
)
from app.quality.images import ImageSource
from app.quality.model import CompareResult, ModelClosed, QualityModel, ScoreResult
from app.scoring.batching import MicroBatcher

log = logging.getLogger("evoq.serving")


class ModelNotReady(EvoqError):
    """No model is loaded yet (start-up, or every load so far failed)."""

    def __init__(self, reason: str) -> None:
        super().__init__("model_not_ready", reason, 503, headers={"Retry-After": "5"})


@dataclass(frozen=True)
class LoadedVersion:
    """A registry version loaded in memory and warmed up."""

    version_id: int
    checkpoint_path: str
    model: QualityModel
    loaded_at: float = field(default_factory=time.time)
    # None: the version has no map yet and its scores are served raw.
    scale: VersionScale | None = None


class ModelSlot:
    """Holds the serving model. A swap replaces the reference only after the new model loaded
    and answered a warm-up; batches already running keep the model they started with."""

    def __init__(self, load: Callable[[str], QualityModel]) -> None:
        self._load = load
        self._current: LoadedVersion | None = None
        self._swap_lock = threading.Lock()
        self.loading_version: int | None = None
        self.last_error: dict[str, Any] | None = None
        self.last_swap_seconds: float | None = None

    @property
    def current(self) -> LoadedVersion | None:
        """The serving version, or None before the first successful load."""
        return self._current

    def status(self) -> dict[str, Any]:
        """Readiness detail for /readyz."""
        current = self._current
        reason = None
        if current is None:
            reason = (
                f"model version {self.loading_version} loading"
                if self.loading_version is not None
                else "model not loaded"
            )
            if self.last_error:
                reason += f"; last load failed: {self.last_error['error']}"
        return {
            "ready": current is not None,
            "version": current.version_id if current else None,
            "loading_version": self.loading_version,
            "last_error": self.last_error,
            "last_swap_seconds": self.last_swap_seconds,
            "reason": reason,
        }

    def set_scale(self, version_id: int, scale: VersionScale | None) -> None:
        """Serve a newly stored map for the loaded version (its first map, once fitted)."""
        with self._swap_lock:
            current = self._current
            if current is not None and current.version_id == version_id:
                self._current = replace(current, scale=scale)

    def swap_to(
        self, version_id: int, checkpoint_path: str, scale: VersionScale | None = None
    ) -> bool:
        """Load, warm up and switch to a version and its map together; on failure keep serving
        the old one."""
        with self._swap_lock:
            if self._current is not None and self._current.version_id == version_id:
                self._current = replace(self._current, scale=scale)
                return True
            self.loading_version = version_id
            started = time.perf_counter()
            try:
                model = self._load(checkpoint_path)
                warm_up(model)
            except Exception as exc:  # noqa: BLE001 - any load failure keeps the old model
                self.last_error = {
                    "version": version_id,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                    "at": time.time(),
                }
                MODEL_SWAPS.labels("failed").inc()
                log.exception("model load failed; previous model keeps serving")
                return False
            finally:
                self.loading_version = None
            previous = self._current
            self._current = LoadedVersion(version_id, checkpoint_path, model, scale=scale)
            if previous is not None:
                # A model process stops once its call in flight returns (hf: nothing to do);
                # a batch that took it just before the swap retries on this one.
                previous.model.close()
            self.last_swap_seconds = time.perf_counter() - started
            self.last_error = None
            if previous is not None:
                ACTIVE_VERSION.remove(str(previous.version_id))
            ACTIVE_VERSION.labels(str(version_id)).set(1)
            MODEL_SWAPS.labels("ok").inc()
            log.info(
                "model swapped",
                extra={
                    "version": version_id,
                    "previous": previous.version_id if previous else None,
                    "seconds": round(self.last_swap_seconds, 3),
                },
            )
            return True


def warm_up(model: QualityModel) -> None:
    """One fast score of a small image, so the first real request does not pay for lazy init."""
    model.score([Image.new("RGB", (64, 64), (128, 128, 128))], mode="fast")


@dataclass(frozen=True)
class ScoreJob:
    """One image to score with one set of parameters."""

    image: ImageSource  # a PreparedImage from the serving model, or pixels
    # "auto": the serving model's own default (QualityModel.serving_mode), resolved per batch.
    mode: Literal["auto", "fast", "deterministic", "sampled"] = "auto"
    samples: int = 8
    explain: bool = False


@dataclass(frozen=True)
class CompareJob:
    """One pair to compare."""

    first: Image.Image
    second: Image.Image
    mode: Literal["auto", "logits", "deterministic", "sampled"] = "auto"
    votes: int = 32


@dataclass(frozen=True)
class Served:
    """A result and the version that produced it; for scores also the calibrated score and the
    reference version of its scale (`scale` None: the version has no map, score is raw)."""

    result: ScoreResult | CompareResult
    version_id: int
    score: float | None = None
    scale: int | None = None
    mode: str | None = None  # the mode that ran ("auto" resolved)

    @property
    def raw_score(self) -> float | None:
        """The model's own score before the version's map."""
        return self.result.score if isinstance(self.result, ScoreResult) else None


Job = ScoreJob | CompareJob


def job_key(job: Job) -> tuple:
    """Jobs batch together only when one model call can serve them all."""
    if isinstance(job, ScoreJob):
        return ("score", job.mode, job.samples if job.mode == "sampled" else 0, job.explain)
    return ("compare", job.mode, job.votes if job.mode == "sampled" else 0)


def _observe_batch(_key: object, size: int, seconds: float) -> None:
    BATCH_SIZE.observe(size)
    BATCH_SECONDS.observe(seconds)


class Scorer:
    """Runs score and compare jobs in micro-batches on whatever model the slot serves."""

    def __init__(self, slot: ModelSlot, *, max_batch: int, max_wait_ms: float, max_queue: int):
        self.slot = slot
        self.batcher: MicroBatcher[Job, Served] = MicroBatcher(
            self._run_batch,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            key=job_key,
            on_batch=_observe_batch,
        )

    async def submit(self, job: Job) -> Served:
        """The result of one job (raises QueueFull or ModelNotReady as API errors)."""
        return await self.batcher.submit(job)

    def _run_batch(self, jobs: list[Job]) -> list[Served]:
        try:
            return self._run_batch_on(self.slot.current, jobs)
        except ModelClosed:  # swapped out between the snapshot and the call
            return self._run_batch_on(self.slot.current, jobs)

    def _run_batch_on(self, loaded: LoadedVersion | None, jobs: list[Job]) -> list[Served]:
        # One snapshot: the whole batch runs on one version.
        if loaded is None:
            raise ModelNotReady(self.slot.status()["reason"])
        first = jobs[0]
        if isinstance(first, ScoreJob):
            mode = resolve_mode(loaded.model, "score", first.mode)
            results = loaded.model.score(
                [job.image for job in jobs],
                mode=mode,
                n=first.samples,
                return_texts=first.explain,
            )
            IMAGES_SCORED.labels(str(loaded.version_id), mode).inc(len(jobs))
            return [replace(calibrated(result, loaded), mode=mode) for result in results]
        mode = resolve_mode(loaded.model, "compare", first.mode)
        results = loaded.model.compare(
            [(job.first, job.second) for job in jobs], mode=mode, k=first.votes
        )
        return [Served(result, loaded.version_id, mode=mode) for result in results]


def resolve_mode(model: QualityModel, task: str, mode: str) -> str:
    """A job's mode, with "auto" as the model's serving mode (reasoning models: deterministic)."""
    return model.serving_mode(task) if mode == "auto" else mode


def calibrated(result: ScoreResult, loaded: LoadedVersion) -> Served:
    """A score with the serving version's map applied (the same map for every mode)."""
    if loaded.scale is None:
        return Served(result, loaded.version_id, result.score, None)
    scale = loaded.scale
    return Served(
        result, loaded.version_id, scale.score_map(result.score), scale.reference_version_id
    )
