"""Turn a model's text answer into a score or a choice; never invent one."""

from __future__ import annotations

import re

SCORE_MIN, SCORE_MAX = 1.0, 5.0

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?|-?\.\d+")


def _numbers(text: str) -> list[float]:
    """Numbers in reading order; '4-5' is two positives and 'x/5' drops the denominator."""
    found = []
    for m in _NUMBER.finditer(text):
        token, start = m.group(), m.start()
        before = text[start - 1] if start else ""
        if before.isalpha() or before == "_":
            continue  # part of a name such as 'Qwen2'
        if token.startswith("-") and before.isalnum():
            token = token[1:]  # a range or hyphen, not a sign
        if before == "/":
            continue  # denominator of '4/5'
        found.append(float(token))
    return found


def _boxed(text: str) -> list[str]:
    return _BOXED.findall(text)


def parse_score(text: str | None) -> float | None:
    """Last number in the last \\boxed{} that has one, clamped to [1, 5]; else the last number
    of the text that already lies in [1, 5]; else None."""
    if not text:
        return None
    for box in reversed(_boxed(text)):
        numbers = _numbers(box)
        if numbers:
            return min(max(numbers[-1], SCORE_MIN), SCORE_MAX)
    in_range = [x for x in _numbers(text) if SCORE_MIN <= x <= SCORE_MAX]
    return in_range[-1] if in_range else None


def parse_choice(text: str | None) -> int | None:
    """0 (first image better) or 1 (second) from the last \\boxed{} holding exactly one of them,
    else from the last standalone 0 or 1 in the text; None otherwise."""
    if not text:
        return None
    for box in reversed(_boxed(text)):
        numbers = _numbers(box)
        if numbers:
            return int(numbers[-1]) if numbers[-1] in (0.0, 1.0) else None
    choices = [x for x in _numbers(text) if x in (0.0, 1.0)]
    return int(choices[-1]) if choices else None
