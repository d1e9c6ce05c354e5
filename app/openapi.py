"""The OpenAPI document: every error response documents the one error shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.errors import ErrorOut

ERROR_REF = {"$ref": "#/components/schemas/Error"}
# FastAPI documents its own validation error body; this API answers ErrorOut instead.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def with_error_shape(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the Error schema on every 4xx/5xx response of every operation."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas["Error"] = ErrorOut.model_json_schema()
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if str(status)[0] in "45":
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the error-shaped document (built once, like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_error_shape(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi
