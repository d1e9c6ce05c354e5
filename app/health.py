"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

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


@router.get("/metrics", summary="Prometheus metrics")
def metrics() -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
