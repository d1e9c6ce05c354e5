"""Options and errors the commands share: score modes, --model resolution and loading."""

from __future__ import annotations

from pathlib import Path

import typer

# The modes of QualityModel.score; "auto" is the model's serving mode (app.quality.model).
SCORE_MODES = ("auto", "deterministic", "fast", "sampled")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` to stderr and return the Exit to raise with `code`."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def model_help() -> str:
    """The --model option's help, naming the configured default."""
    from app.settings import Settings

    default = Settings.model_fields["base_model"].default
    return (
        "Registry version (3 or v3), model folder, hub id or builtin:<name> "
        f"(default: EVOQ_BASE_MODEL, which is {default} unless set)."
    )


def default_server() -> str:
    """The URL a server started with the default settings listens on."""
    from app.settings import Settings

    fields = Settings.model_fields
    return f"http://{fields['host'].default}:{fields['port'].default}"


def resolve_model_option(model: str | None) -> str:
    """A --model/--base option as a loadable source: a registry version (`3` or `v3`), a folder,
    hub id or builtin:<name> (built into the data directory); None: the configured base model."""
    from app.model_sources import resolve_model_source
    from app.registry.bootstrap import models_dir
    from app.settings import get_settings

    settings = get_settings()
    version = (model or "").removeprefix("v")
    if version.isdigit() and not Path(model).exists():
        from app.db import session_scope
        from app.registry import service as registry

        with session_scope() as db:
            found = registry.get(db=db, version_id=int(version))
            if found is None:
                raise typer.BadParameter(f"no model version {version} in the registry")
            return found.checkpoint_path
    return resolve_model_source(model or settings.base_model, models_dir(settings))


def load_model_option(model: str | None) -> tuple[object, str]:
    """Load the model a --model option names, with a notice before a builtin is built and a
    clear error (typer.Exit) for an unknown builtin or a missing folder. Returns (model, name)."""
    from app.model_sources import load_model  # registers the builtin names first
    from app.quality.builtins import pending_build
    from app.registry.bootstrap import models_dir
    from app.settings import get_settings

    settings = get_settings()
    name = model or settings.base_model
    notice = pending_build(name, models_dir(settings))
    if notice:
        typer.echo(f"note: {notice}", err=True)
    try:
        source = resolve_model_option(name)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if not Path(source).is_dir() and (
        Path(source).is_absolute() or source.startswith(".") or source.count("/") != 1
    ):
        raise fail(f"model folder not found: {source}")
    try:
        loaded = load_model(source, device=settings.device, max_pixels=settings.max_pixels)
    except (OSError, ValueError) as exc:
        hint = "" if Path(source).is_dir() else " (not a local folder; tried it as a hub id)"
        raise fail(f"cannot load model {name}{hint}: {exc}") from exc
    return loaded, name
