"""Prometheus metrics of the API process, labelled by model version where it matters."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "evoq_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram("evoq_http_request_seconds", "HTTP request latency.", ["method", "route"])
IMAGES_SCORED = Counter(
    "evoq_images_scored_total", "Images scored, by model version and mode.", ["version", "mode"]
)
BATCH_SIZE = Histogram(
    "evoq_batch_size",
    "Images per model call of the micro-batcher.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
BATCH_SECONDS = Histogram(
    "evoq_batch_seconds",
    "Wall time of one model call of the micro-batcher.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_FULL = Counter("evoq_queue_full_total", "Score requests refused with 503 (queue full).")
ACTIVE_VERSION = Gauge(
    "evoq_active_model_version", "Model version serving in this process.", ["version"]
)
MODEL_SWAPS = Counter("evoq_model_swaps_total", "Hot swaps, by outcome.", ["outcome"])


def route_label(scope: Scope) -> str:
    """The route template that answered (`/v1/models/{version_id}`), a mount's prefix plus
    `/{path}` for mounted apps such as the console's static files, else "unmatched" (unknown
    paths stay one label, so the label set stays bounded)."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "unmatched")
    app = scope.get("app")
    path = scope.get("path", "")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        if isinstance(candidate, Mount) and path.startswith(candidate.path + "/"):
            return candidate.path + "/{path}"
    return "unmatched"


class MetricsMiddleware:
    """Counts and times HTTP requests by route template. A plain ASGI middleware: Starlette's
    BaseHTTPMiddleware spawns a task and wraps every body chunk, a cost on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = route_label(scope)
            HTTP_LATENCY.labels(scope["method"], route).observe(time.perf_counter() - start)
            HTTP_REQUESTS.labels(scope["method"], route, str(status["code"])).inc()
