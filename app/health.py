"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.db import ping

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Process is alive")
def healthz() -> dict[str, str]:
    """Always 200 while the process can answer."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready to serve",
    responses={503: {"description": "Not ready; `reasons` says why."}},
)
def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and the model is loaded and warm; 503 with reasons otherwise."""
    reasons: list[str] = []
    detail: dict[str, object] = {}
    try:
        ping()
        detail["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        reasons.append(f"database unreachable: {type(exc).__name__}: {exc}".strip()[:300])
        detail["database"] = "unreachable"
    # The broker only carries rounds: scoring works without it, so it is reported, not required.
    detail["broker"] = _broker_status(request)
    slot = getattr(request.app.state, "model_slot", None)
    if slot is not None:
        model_state = slot.status()
        detail["model"] = model_state
        if not model_state.get("ready"):
            reasons.append(model_state.get("reason") or "model not loaded")
    if reasons:
        body = {"error": "not_ready", "detail": "; ".join(reasons), "status": "unready"}
        return JSONResponse({**body, "reasons": reasons, **detail}, status_code=503)
    return JSONResponse({"status": "ready", **detail})


def _broker_status(request: Request) -> str:
    """ "ok", "embedded" (the filesystem queue) or "unreachable: <why>"."""
    settings = request.app.state.settings
    if settings.embedded_broker or not settings.broker_url.startswith("redis"):
        return "embedded" if settings.embedded_broker else "unchecked"
    client = getattr(request.app.state, "broker_client", None)
    if client is None:
        client = redis.Redis.from_url(
            settings.broker_url, socket_timeout=1, socket_connect_timeout=1
        )
        request.app.state.broker_client = client
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


@router.get("/metrics", summary="Prometheus metrics")
def metrics() -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
