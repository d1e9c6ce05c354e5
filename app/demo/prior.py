"""builtin:demo's weak prior: supervised compare answers and random score digits on the prior split."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from app.demo.config import IMAGE_PIXELS, DemoConfig, PriorConfig
from app.demo.synthetic import SyntheticImage, generate
from app.demo.tiny import build_tiny_model
from app.quality.loading import load_model
from app.quality.supervised import save_finetuned, supervised_batch


def _seeded(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _compare_examples(items: Sequence[SyntheticImage], n: int, rng: np.random.Generator):
    """n random pairs of different quality, with the right answer ("0": the first is better)."""
    pairs, answers = [], []
    while len(pairs) < n:
        i, j = rng.integers(len(items), size=2)
        a, b = items[i], items[j]
        if a.level == b.level:
            continue
        pairs.append((a.image, b.image))
        answers.append("0" if a.level < b.level else "1")
    return pairs, answers


def _decay(schedule: str, steps: int) -> Callable[[int], float]:
    """The learning-rate multiplier at each step of a schedule."""
    if schedule == "constant":
        return lambda step: 1.0
    if schedule == "linear":
        return lambda step: 1.0 - step / steps
    if schedule == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * step / steps))
    raise ValueError(f"schedule must be 'constant', 'linear' or 'cosine', not {schedule!r}")


def train_prior(
    model_dir: str | Path,
    out: str | Path,
    items: Sequence[SyntheticImage],
    config: PriorConfig,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Supervised prior on the answer-only prompts QualityModel and TRL render; saves to `out`.

    Compare examples carry the true answer; score examples a uniformly random digit, which
    teaches the format and nothing about quality.
    """
    rng = _seeded(seed)
    qm = load_model(str(model_dir), device="cpu", dtype="float32", max_pixels=IMAGE_PIXELS)
    model = qm.model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _decay(config.schedule, config.steps))
    bar = tqdm(range(config.steps), desc="demo prior", disable=not progress, unit="step")
    for _ in bar:
        pairs, compare_answers = _compare_examples(items, config.compare_per_step, rng)
        picks = rng.integers(len(items), size=config.score_per_step)
        singles = [(items[i].image,) for i in picks]
        digits = [str(d) for d in rng.integers(1, 6, size=config.score_per_step)]
        loss = model(**supervised_batch(qm, "compare", pairs, compare_answers)).loss
        loss = loss + model(**supervised_batch(qm, "score", singles, digits)).loss
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optim.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return save_finetuned(qm, model_dir, out)  # keeps answer-only prompting the default


def build_demo_base(
    path: str | Path, config: DemoConfig | None = None, progress: bool = True
) -> Path:
    """Write builtin:demo: the tiny model of DEMO-FINDINGS.md after its prior (a few minutes)."""
    cfg = config or DemoConfig()
    path = Path(path)
    # The photo split is drawn before any image, so the prior's sources are those run_demo
    # keeps out of pool and eval for the same seed, whatever the count.
    synth = dataclasses.replace(cfg.synthetic, seed=cfg.seed, counts={"prior": cfg.prior.images})
    prior = generate(synth)["prior"]
    with tempfile.TemporaryDirectory(prefix=".demo-init.", dir=path.parent) as tmp:
        init = build_tiny_model(
            Path(tmp) / "init", vocab="small", seed=cfg.seed, min_pixels=IMAGE_PIXELS,
            max_pixels=IMAGE_PIXELS,
        )  # fmt: skip
        train_prior(init, path, prior, cfg.prior, seed=cfg.seed, progress=progress)
    return path
