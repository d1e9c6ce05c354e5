"""Supervised batches for answer-only prompts: the prompt, then the answer and <|im_end|>, with the
loss on those tokens only (the demo's prior, the format prior of tests, the comparison refresh),
and saving the model such training produced."""

from __future__ import annotations

from pathlib import Path

import torch

from app.quality.checkpoint import write_atomically
from app.quality.loading import copy_prompt_marker
from app.quality.model import QualityModel

__all__ = ["save_finetuned", "supervised_batch"]


def supervised_batch(qm: QualityModel, task: str, rows, answers: list[str]) -> dict:
    """Prompt + answer + <|im_end|>, loss only on those; answers must tokenize to equal length."""
    inputs = qm.encode(task, False, rows)
    tok = qm.processor.tokenizer
    answer = torch.tensor(
        [tok.encode(a, add_special_tokens=False) + qm.eos_ids[:1] for a in answers]
    )
    answer = answer.to(qm.device)
    prompt_len = inputs["input_ids"].shape[1]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], answer], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(answer)], dim=1)
    if "mm_token_type_ids" in inputs:
        types = inputs["mm_token_type_ids"]
        inputs["mm_token_type_ids"] = torch.cat(
            [types, torch.zeros_like(answer, dtype=types.dtype)], 1
        )
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, prompt_len:] = answer
    inputs["labels"] = labels
    return inputs


def save_finetuned(qm: QualityModel, parent: str | Path, out: str | Path) -> Path:
    """Write `qm`'s model and processor to `out` (complete or absent, with its weights digest),
    keeping the parent's answer-only prompting default."""
    model = qm.model.eval()

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        qm.processor.save_pretrained(staging)

    out = Path(out)
    write_atomically(out, write)
    copy_prompt_marker(parent, out)
    return out
