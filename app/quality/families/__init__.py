"""Model families, one module each, registered in FAMILIES by config.json's model_type.

Adding a family: write its module (a Family: config builder, processor class, chat template)
and add one line to _MODULES. Nothing else branches on the model type.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig

from app.quality.families import qwen2_5_vl, qwen2_vl, qwen3_vl
from app.quality.families.base import Family

_MODULES = (qwen2_vl, qwen2_5_vl, qwen3_vl)
FAMILIES: dict[str, Family] = {m.FAMILY.model_type: m.FAMILY for m in _MODULES}
DEFAULT_FAMILY = "qwen2.5-vl"


def by_name(name: str) -> Family:
    """The family the CLI calls `name` (qwen2-vl, qwen2.5-vl, qwen3-vl)."""
    for family in FAMILIES.values():
        if family.name == name:
            return family
    known = ", ".join(f.name for f in FAMILIES.values())
    raise ValueError(f"unknown model family {name!r}; known: {known}")


def by_model_type(model_type: str) -> Family:
    """The family of a config.json's model_type."""
    if model_type not in FAMILIES:
        raise ValueError(f"unsupported model type {model_type!r}; supported: {sorted(FAMILIES)}")
    return FAMILIES[model_type]


def of_checkpoint(source: str | Path) -> Family:
    """The family of a checkpoint folder or hub id, from its config.json."""
    return by_model_type(AutoConfig.from_pretrained(str(source)).model_type)


__all__ = ["DEFAULT_FAMILY", "FAMILIES", "Family", "by_model_type", "by_name", "of_checkpoint"]
