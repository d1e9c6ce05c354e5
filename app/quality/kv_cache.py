"""The KV cache under both transformers 5 spellings: `cache` (5.2x) and `past_key_values` (up to
5.19, which vLLM 0.32 pins and the GPU machines' transformers 5.17 ships). pyproject allows
>=5.5, so decoding code names the cache through these two functions, never directly."""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.cache
def _kwarg_for(forward_owner: type) -> str:
    params = inspect.signature(forward_owner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """`{name: cache}` under the name this model's forward takes."""
    return {_kwarg_for(type(model)): cache}


def output_cache(output: Any) -> Any:
    """The KV cache a forward returned (None when it kept none)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)
