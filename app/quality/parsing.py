"""Turn a model's text answer into a score or a choice; never invent one."""

from __future__ import annotations

import re

SCORE_MIN, SCORE_MAX = 1.0, 5.0

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_TAGGED = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
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


def _answers(text: str) -> list[str]:
    """The marked answers in reading order: every \\boxed{...}, then every <answer> tag (a box
    is the card's format, so it wins when a text has both)."""
    return _TAGGED.findall(text) + _BOXED.findall(text)


def parse_score(text: str | None, *, reasoning: bool = False) -> float | None:
    """Last number in the last marked answer (\\boxed{} or <answer>) that has one, clamped to
    [1, 5]. Without reasoning also the last number of the text that lies in [1, 5] (an
    answer-only reply is a bare "3.75"); with reasoning only a marked answer counts, so the
    "3 people" of a cut-off monologue is no score. None otherwise."""
    if not text:
        return None
    for answer in reversed(_answers(text)):
        numbers = _numbers(answer)
        if numbers:
            return min(max(numbers[-1], SCORE_MIN), SCORE_MAX)
    if reasoning:
        return None
    in_range = [x for x in _numbers(text) if SCORE_MIN <= x <= SCORE_MAX]
    return in_range[-1] if in_range else None


def parse_choice(text: str | None, *, reasoning: bool = False) -> int | None:
    """0 (first image better) or 1 (second) from the last marked answer (\\boxed{} or <answer>)
    holding a number, if that number is 0 or 1. Without reasoning also the last standalone 0 or
    1 of the text; with reasoning only a marked answer counts ("image 1 is sharper than image
    2" is no vote). None otherwise."""
    if not text:
        return None
    for answer in reversed(_answers(text)):
        numbers = _numbers(answer)
        if numbers:
            return int(numbers[-1]) if numbers[-1] in (0.0, 1.0) else None
    if reasoning:
        return None
    choices = [x for x in _numbers(text) if x in (0.0, 1.0)]
    return int(choices[-1]) if choices else None
