"""create_app(): routers, error handling, and the lifespan (model slot, activation watcher)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import auth, health
from app.calibration.router import router as anchors_router
from app.console.router import mount_console
from app.corpus.router import router as corpus_router
from app.errors import EvoqError, database_unavailable, http_error
from app.observability import MetricsMiddleware
from app.openapi import install_openapi
from app.registry.router import admin_router as registry_admin_router
from app.registry.router import router as registry_router
from app.rounds.router import router as rounds_router
from app.scoring.lifecycle import start_serving, stop_serving
from app.scoring.router import router as scoring_router
from app.settings import Settings, get_settings

log = logging.getLogger("evoq.api")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(EvoqError)
    async def _evoq_error(_request: Request, exc: EvoqError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routing and body-parsing failures (404, 405, malformed JSON) answer the one shape too.
        error = http_error(exc.status_code, exc.detail)
        return JSONResponse(error.to_dict(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        # A connection refused, reset or timed out: the client may retry, not a server bug.
        log.warning("database unavailable", extra={"error": f"{type(exc).__name__}"})
        error = database_unavailable(exc)
        return JSONResponse(error.to_dict(), status_code=503, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return JSONResponse(
            {"error": "invalid_request", "detail": detail, "problems": problems}, status_code=422
        )


def create_app(settings: Settings | None = None, *, load_model: bool = True) -> FastAPI:
    """The API application. `load_model=False` serves without a model (tests of the web layer)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("api starting", extra={"database": settings.resolved_database_url.split("@")[-1]})
        await start_serving(app, settings, load_model=load_model)
        try:
            yield
        finally:
            await stop_serving(app)
            log.info("api stopped")

    app = FastAPI(
        title="EvoQuality",
        version="0.1.0",
        description="Image-quality scores from a vision-language model that improves itself "
        "on your unlabeled images (pairwise voting + GRPO). Errors share one shape: "
        '`{"error": code, "detail": text, ...}`.',
        lifespan=lifespan,
    )
    app.state.settings = settings
    _install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(MetricsMiddleware)
    for router in (
        health.router,
        auth.router,
        scoring_router,
        corpus_router,
        registry_router,
        registry_admin_router,
        rounds_router,
        anchors_router,
    ):
        app.include_router(router)
    mount_console(app)
    return app
