"""Start and stop the serving machinery inside the API's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fastapi import FastAPI

from app.calibration import anchors
from app.calibration import service as calibration
from app.calibration.service import VersionScale
from app.db import session_scope
from app.model_sources import load_model, resolve_model_source
from app.quality.model import QualityModel
from app.registry import service as registry
from app.registry.bootstrap import ensure_base_registered, models_dir
from app.scoring.demo_notice import DemoAnnouncer
from app.scoring.serving import ModelSlot, Scorer
from app.settings import Settings

log = logging.getLogger("evoq.serving")

RETRY_FAILED_LOAD_S = 30.0


def model_loader(settings: Settings):  # noqa: ANN201 - Callable[[str], QualityModel]
    """A function that loads a checkpoint with the configured device, dtype and pixel cap."""

    def load(checkpoint_path: str) -> QualityModel:
        return load_model(
            checkpoint_path,
            device=settings.device,
            dtype=settings.dtype,
            max_pixels=settings.max_pixels,
            cache_dir=models_dir(settings),
            batch_size=settings.batch_max_size,
        )

    return load


def serving_loader(settings: Settings):  # noqa: ANN201 - Callable[[str], QualityModel]
    """The API's loader: a vLLM engine per version (EVOQ_SERVING_BACKEND=vllm), else
    model_loader, in a child process when EVOQ_SCORING_PROCESS is set."""
    if settings.serving_backend == "vllm":
        from app.quality.vllm_backend import load_vllm_model

        def load_vllm(checkpoint_path: str) -> QualityModel:
            source = resolve_model_source(checkpoint_path, models_dir(settings))
            # A swap starts the new engine before the old one stops: two share the budget.
            return load_vllm_model(
                source,
                python=settings.vllm_python,
                max_pixels=settings.max_pixels,
                gpu_memory=settings.vllm_gpu_memory,
                engines=2,
            )

        return load_vllm
    if not settings.scoring_process:
        return model_loader(settings)
    from app.scoring.model_process import ProcessQualityModel

    def load(checkpoint_path: str) -> QualityModel:
        options = {
            "device": settings.device,
            "dtype": settings.dtype,
            "max_pixels": settings.max_pixels,
            "cache_dir": str(models_dir(settings)),
            "batch_size": settings.batch_max_size,
        }
        return ProcessQualityModel(checkpoint_path, options)

    return load


def _active_version() -> tuple[int, str, VersionScale | None] | None:
    with session_scope() as db:
        active = registry.get_active(db=db)
        if active is None:
            return None
        return (
            active.id,
            active.checkpoint_path,
            calibration.version_scale(db=db, version_id=active.id),
        )


def freeze_anchors(slot: ModelSlot, settings: Settings) -> None:
    """At the first activation, freeze the anchor set with the serving version's raw scores."""
    current = slot.current
    if current is not None:
        anchors.freeze_if_missing(
            settings, current.version_id, anchors.raw_serving_scores(current.model)
        )


async def watch_activations(slot: ModelSlot, settings: Settings) -> None:
    """Poll the registry; when the active version changes, load it and its map in the background
    and swap both together; when the serving version gains its map, serve it."""
    failed_at: dict[int, float] = {}
    anchors_checked = False
    demo = DemoAnnouncer(log)
    while True:
        try:
            active = await asyncio.to_thread(_active_version)
            current = slot.current
            if active and (current is None or current.version_id != active[0]):
                version_id, path, scale = active
                if time.monotonic() - failed_at.get(version_id, -1e9) > RETRY_FAILED_LOAD_S:
                    ok = await asyncio.to_thread(slot.swap_to, version_id, path, scale)
                    if ok:
                        demo.served(version_id, path)
                    else:
                        failed_at[version_id] = time.monotonic()
            elif active and current is not None and current.scale != active[2]:
                slot.set_scale(active[0], active[2])
            if not anchors_checked and slot.current is not None:
                await asyncio.to_thread(freeze_anchors, slot, settings)
                anchors_checked = True
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a database hiccup must not end the watcher
            log.exception("activation watcher iteration failed")
        await asyncio.sleep(settings.activation_poll_seconds)


async def _bootstrap_then_watch(slot: ModelSlot, settings: Settings) -> None:
    while True:
        try:
            await asyncio.to_thread(ensure_base_registered, settings)
            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported in /readyz, retried
            slot.last_error = {"version": None, "error": f"{type(exc).__name__}: {exc}"[:500]}
            log.exception("registering the base model failed; retrying")
            await asyncio.sleep(5)
    await watch_activations(slot, settings)


async def start_serving(app: FastAPI, settings: Settings, *, load_model: bool = True) -> None:
    """Create the model slot and the scorer; start bootstrap + activation watcher in background."""
    slot = ModelSlot(serving_loader(settings))
    scorer = Scorer(
        slot,
        max_batch=settings.batch_max_size,
        max_wait_ms=settings.batch_max_wait_ms,
        max_queue=settings.queue_max,
    )
    await scorer.batcher.start()
    app.state.model_slot = slot if load_model else None
    app.state.scorer = scorer
    app.state.watcher = (
        asyncio.create_task(_bootstrap_then_watch(slot, settings), name="activation-watcher")
        if load_model
        else None
    )


async def stop_serving(app: FastAPI) -> None:
    """Stop watching, finish queued requests, release the model."""
    watcher = getattr(app.state, "watcher", None)
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    scorer = getattr(app.state, "scorer", None)
    if scorer is not None:
        await scorer.batcher.stop()
        if scorer.slot.current is not None:
            scorer.slot.current.model.close()  # a model process stops with the API
