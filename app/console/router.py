"""GET /console/...: Jinja2 pages (kept out of the OpenAPI schema); the data comes from the
JSON API, fetched by each page's script with the API token kept in the browser session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from app.rounds.schemas import AugmentIn, RoundConfigIn
from app.scoring.demo_notice import DEMO_NOTICE, serving_demo

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)

PAGES = (
    ("score", "Score"),
    ("compare", "Compare"),
    ("corpus", "Corpus"),
    ("rounds", "Rounds"),
    ("models", "Models"),
)


def model_fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One form entry per field of `model`, from its JSON schema; defaults from an instance
    (default factories are missing from the schema). Nested models are left out."""
    schema = model.model_json_schema()
    defaults = model().model_dump(mode="json")
    fields = []
    for name, prop in schema["properties"].items():
        options = prop.get("anyOf", [prop])
        if any("$ref" in o for o in options):
            continue  # a nested model: its own fields, rendered by its own section
        kinds = [o.get("type") for o in options if o.get("type") != "null"]
        enum = next((o["enum"] for o in options if "enum" in o), None)
        items = next((o["items"] for o in options if "items" in o), {})
        kind = "enum" if enum else (kinds[0] if kinds else "string")
        fields.append(
            {
                "name": name,
                "kind": "choices" if kind == "array" and "enum" in items else kind,
                "enum": enum or items.get("enum", []),
                "nullable": any(o.get("type") == "null" for o in options),
                "default": defaults.get(name),
                "help": prop.get("description", ""),
                "min": next((o.get("minimum") for o in options if "minimum" in o), None),
                "max": next((o.get("maximum") for o in options if "maximum" in o), None),
            }
        )
    return fields


def config_fields() -> list[dict[str, Any]]:
    """The round config form: RoundConfigIn's scalar fields."""
    return model_fields(RoundConfigIn)


def augment_fields() -> list[dict[str, Any]]:
    """The round form's `augment` section: AugmentIn's fields (sent only when switched on)."""
    return model_fields(AugmentIn)


def _page(request: Request, template: str, page: str, **context: Any) -> HTMLResponse:
    # Every page says so while this process serves a demonstration model.
    slot = getattr(request.app.state, "model_slot", None)
    demo = DEMO_NOTICE if serving_demo(slot) else None
    context = {"page": page, "pages": PAGES, "demo_notice": demo, **context}
    return templates.TemplateResponse(request, template, context)


@router.get("", response_class=HTMLResponse)
async def index() -> RedirectResponse:
    return RedirectResponse("/console/score")


@router.get("/score", response_class=HTMLResponse)
async def score_page(request: Request) -> HTMLResponse:
    return _page(request, "score.html", "score")


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(request: Request) -> HTMLResponse:
    return _page(request, "compare.html", "compare")


@router.get("/corpus", response_class=HTMLResponse)
async def corpus_page(request: Request) -> HTMLResponse:
    return _page(request, "corpus.html", "corpus")


@router.get("/rounds", response_class=HTMLResponse)
async def rounds_page(request: Request) -> HTMLResponse:
    return _page(request, "rounds.html", "rounds", fields=config_fields(), augment=augment_fields())


@router.get("/rounds/{round_id}", response_class=HTMLResponse)
async def round_page(request: Request, round_id: int) -> HTMLResponse:
    return _page(request, "round.html", "rounds", round_id=round_id)


@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request) -> HTMLResponse:
    return _page(request, "models.html", "models")


def mount_console(app: FastAPI) -> None:
    """Add the console pages and their static files to the app."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
