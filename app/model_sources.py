"""Model sources for the entry points (CLI, serving, registry bootstrap, workers): a folder, a
hub id or "builtin:<name>". Importing this module registers the demo's builtin models, which
app.quality itself never imports."""

from __future__ import annotations

import app.demo.builtins  # noqa: F401 - registers builtin:tiny, builtin:demo, builtin:demo-evolved
from app.quality.builtins import builtin_names, register_builtin, resolve_model_source
from app.quality.loading import load_model

__all__ = ["builtin_names", "load_model", "register_builtin", "resolve_model_source"]
