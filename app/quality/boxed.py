"""Deterministic reasoning answers: cut a greedy answer just after its "\\boxed{" and append it to
the prompt, so one forward reads the answer digit's distribution where the model writes it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

BOX_OPEN = "\\boxed{"
THINK_END = "</think>"
# Row-aligned tensors of an encoded batch that grow with the appended tokens.
_TEXT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")


def box_prefixes(tokenizer, answers: Sequence[Sequence[int]]) -> tuple[list[list[int]], list[bool]]:
    """Each answer's tokens up to and including its last "\\boxed{", and whether it wrote one.

    An answer with no box of its own (cut off, looping, or another format) gets its monologue
    closed and the box opened after it, so its answer distribution is still defined; the flag
    tells the caller it was forced.
    """
    prefixes, boxed = [], []
    for answer in answers:
        answer = list(answer)
        end = _last_box_end(tokenizer, answer)
        boxed.append(end is not None)
        prefixes.append(answer[:end] if end is not None else answer + _opener(tokenizer, answer))
    return prefixes, boxed


def _opener(tokenizer, answer: list[int]) -> list[int]:
    """Tokens that end an unboxed answer's monologue (if still open) and open its box."""
    closing = "" if THINK_END in tokenizer.decode(answer) else " " + THINK_END
    return tokenizer.encode(f"{closing} {BOX_OPEN}", add_special_tokens=False)


def _last_box_end(tokenizer, answer: list[int]) -> int | None:
    """The k for which answer[:k] decodes to text ending in "\\boxed{" (the last such k)."""
    for k in range(len(answer), 0, -1):
        # Only tokens holding "{" can close the opener: decode the prefix for those alone.
        closes = "{" in tokenizer.decode(answer[k - 1 : k])
        if closes and tokenizer.decode(answer[:k]).endswith(BOX_OPEN):
            return k
    return None


def append_continuations(inputs: dict, continuations: Sequence[Sequence[int]], pad: int) -> dict:
    """A left-padded encoded batch with `continuations[i]` appended to row i (text tokens),
    re-padded on the left; vision inputs are unchanged."""
    mask = inputs["attention_mask"]
    rows = []
    for i, extra in enumerate(continuations):
        keep = mask[i].bool()
        tail = torch.tensor(list(extra), dtype=torch.long, device=mask.device)
        row = {"input_ids": torch.cat([inputs["input_ids"][i][keep], tail])}
        row["attention_mask"] = torch.ones_like(row["input_ids"])
        if "mm_token_type_ids" in inputs:  # the appended answer is text
            row["mm_token_type_ids"] = torch.cat(
                [inputs["mm_token_type_ids"][i][keep], torch.zeros_like(tail)]
            )
        rows.append(row)
    width = max(len(row["input_ids"]) for row in rows)
    out = dict(inputs)
    for key in _TEXT_KEYS:
        if key not in inputs:
            continue
        fill = pad if key == "input_ids" else 0
        grown = torch.full((len(rows), width), fill, dtype=inputs[key].dtype, device=mask.device)
        for i, row in enumerate(rows):
            grown[i, width - len(row[key]) :] = row[key]
        out[key] = grown
    return out
