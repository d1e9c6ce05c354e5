"""The offline learning demo: pseudo-label accounting, the table, and a reduced real demo."""

from __future__ import annotations

import dataclasses
import json
import math
import tarfile
from pathlib import Path

import pytest
from PIL import Image
from safetensors.torch import load_file

from app.demo import demo_bundle
from app.demo.config import IMAGE_PIXELS
from app.demo.demo import (
    COLUMNS,
    DemoConfig,
    PriorConfig,
    RoundRow,
    _round_config,
    build_demo_base,
    build_demo_evolved,
    format_table,
    plot_rows,
    pseudo_label_accuracy,
    same_reference_accuracy,
)
from app.demo.tiny import build_tiny_model
from app.model_sources import builtin_names
from app.quality.augment import Variant
from app.quality.loading import load_model
from app.quality.voting import VoteResult


def test_pseudo_label_accuracy_by_hand():
    level = {"a": 0, "b": 2, "c": 4, "d": 2}.__getitem__  # lower level = better image
    votes = [
        VoteResult("a", "b", 24, 8, 0, 1.0),  # a better: 24 of 32 right, majority right
        VoteResult("c", "b", 20, 10, 2, 1.0),  # b better: 10 of 30 right, majority wrong
        VoteResult("c", "a", 16, 16, 0, 0.5),  # a better: 16 of 32 right, tie counts half
        VoteResult("b", "d", 30, 2, 0, 1.0),  # same level: left out
        VoteResult("a", "c", 0, 0, 32, None),  # no valid vote: left out
    ]
    k1, k32 = pseudo_label_accuracy(votes, level)
    assert k1 == pytest.approx((24 + 10 + 16) / (32 + 30 + 32))
    assert k32 == pytest.approx((1 + 0 + 0.5) / 3)
    assert all(math.isnan(x) for x in pseudo_label_accuracy(votes[3:], level))


def test_same_reference_accuracy_by_hand():
    dark2, dark4, noise3 = (
        Variant("r", "darken", 2),
        Variant("r", "darken", 4),
        Variant("r", "noise", 3),
    )
    votes = [
        VoteResult("r", dark2, 30, 2, 0, 1.0),  # the reference beats its variant: right
        VoteResult(dark4, dark2, 20, 12, 0, 1.0),  # level 4 is worse than level 2: wrong
        VoteResult(dark2, noise3, 3, 29, 0, 0.0),  # two types: order unknown, left out
        VoteResult("r", "s", 30, 2, 0, 1.0),  # two references: left out
        VoteResult(noise3, "r", 16, 16, 0, 0.5),  # a tie counts half
        VoteResult("r", dark4, 10, 12, 0, None),  # filtered out: no label, left out
    ]
    assert same_reference_accuracy(votes) == (pytest.approx((1 + 0 + 0.5) / 3), 3)
    k1, k32 = pseudo_label_accuracy(votes, {"r": 0, "s": 2}.__getitem__)  # stored pairs only
    assert k1 == pytest.approx(30 / 32) and k32 == 1.0


def test_table_columns_in_issue_order(tmp_path):
    rows = [RoundRow(r, 0.6, 0.7, 0.72, 0.1 * r, 0.1 * r, 0.05, 0.8) for r in range(3)]
    table = format_table(rows).splitlines()
    assert table[0].split("|")[1:-1] == [f" {title} " for _, title in COLUMNS]
    assert [c.strip() for c in table[0].split("|")[1:-1]] == [
        "round",
        "pseudo-label acc K=1",
        "pseudo-label acc K=32",
        "compare acc",
        "SRCC sampled",
        "PLCC sampled",
        "SRCC fast",
        "score std",
        "same-ref acc K=32",
    ]
    assert [line.split("|")[1].strip() for line in table[2:]] == ["0", "1", "2"]
    with Image.open(plot_rows(rows, tmp_path / "demo.png")) as img:
        assert img.format == "PNG"


def test_later_rounds_train_at_a_decayed_learning_rate():
    cfg = DemoConfig(learning_rate=4e-4, round_lr_decay=0.5)
    rates = [_round_config(cfg, r).grpo.learning_rate for r in (1, 2, 3)]
    assert rates == pytest.approx([4e-4, 2e-4, 1e-4])


def test_later_rounds_train_their_own_step_count():
    steps = [_round_config(DemoConfig(grpo_steps=60, later_grpo_steps=30), r) for r in (1, 2, 3)]
    assert [c.grpo.max_steps for c in steps] == [60, 30, 30]
    assert _round_config(DemoConfig(grpo_steps=60, later_grpo_steps=None), 2).grpo.max_steps == 60


def test_later_rounds_refresh_the_comparison_and_add_variants_beside_their_images():
    rounds = [_round_config(DemoConfig(), r) for r in (1, 2, 3)]
    assert [c.refresh.steps for c in rounds] == [0, 50, 50]  # round 1 votes with the prior
    assert [c.augment.variants for c in rounds] == [0, 10, 10]
    assert rounds[1].augment.random_pairs_from == "references"


def test_round_one_votes_hard_labels_and_later_rounds_soft_ones():
    cfg = DemoConfig()
    assert [_round_config(cfg, r).vote.label for r in (1, 2, 3)] == ["hard", "soft", "soft"]
    assert _round_config(DemoConfig(later_label="hard"), 2).vote.label == "hard"


def test_demo_models_are_builtins():
    assert {"demo", "demo-evolved"} <= set(builtin_names())


def _shipped_prior(folder: Path) -> Path | None:
    """Seed 0's prior as the package ships it, or None (then the demo trains it)."""
    if not demo_bundle.available():
        return None
    return demo_bundle.unpack(folder) / "lineage" / "round-0"


def _as_json(value: object) -> object:
    return json.loads(json.dumps(value))


@pytest.mark.skipif(not demo_bundle.available(), reason="no shipped archive")
def test_the_shipped_prior_follows_todays_prior_recipe():
    """The demo test starts from the shipped prior: it must be what build_demo_base makes now."""
    with tarfile.open(demo_bundle.ARCHIVE, "r:gz") as tar:
        shipped = json.load(tar.extractfile("lineage.json"))["config"]
    today = _as_json(dataclasses.asdict(DemoConfig()))
    assert shipped["seed"] == 0
    assert shipped["prior"] == today["prior"]
    assert shipped["synthetic"] == today["synthetic"]


def test_the_prior_trains_the_tiny_model_into_an_answer_only_base(tmp_path):
    small = PriorConfig(steps=3, images=40, compare_per_step=4, score_per_step=2)
    base = build_demo_base(tmp_path / "demo", DemoConfig(seed=0, prior=small), progress=False)
    init = build_tiny_model(
        tmp_path / "init", vocab="small", seed=0, min_pixels=IMAGE_PIXELS, max_pixels=IMAGE_PIXELS
    )
    before, after = load_file(init / "model.safetensors"), load_file(base / "model.safetensors")
    assert before.keys() == after.keys()
    moved = [name for name in before if not (before[name] == after[name]).all()]
    assert len(moved) > len(before) // 2  # the supervised steps reached most tensors
    model = load_model(str(base), device="cpu")
    assert model.reasoning_default is False
    assert model.processor.image_processor.size["longest_edge"] == IMAGE_PIXELS


# The CI demo: exactly `evoq demo`'s recipe through the builtin:demo-evolved builder, i.e.
# synthetic data, two rounds of voting + TRL GRPO via run_round, measurement on the eval split,
# from seed 0's supervised prior as the package ships it (the archive's lineage/round-0, which
# `evoq demo --base` takes too): the prior is labelled training, not what the demo shows, and
# rebuilding it cost CI ~230 s of one core (the test: 545 s -> 317 s). test_the_prior_trains_*
# runs its code; the shipped prior's recipe is checked against today's defaults. It skips only
# the extra pool-label votes that no assertion reads.
# GAIN_BAR sits below every run measured (r0 -> r2 sampled SRCC gain on the 2000-image eval
# split; docs/demo.md): seeds 0 / 1 / 2 gained +0.356 / +0.334 / +0.329 on an AVX-512 machine and
# +0.284 / +0.265 / +0.311 on this kind's Zen 3 machine. The same seed moves by ~0.07 between
# CPUs, so the bar leaves that much room below the lowest run; ROUND2_SLACK lets round 2 trail
# round 1 by no more than a collapse would (a collapsed round 2 fell to 0.05 from 0.31).
GAIN_BAR = 0.20
ROUND2_SLACK = 0.05


@pytest.mark.slow
@pytest.mark.longest
def test_demo_evolved_learns_without_labels(tmp_path):
    events = []
    folder = build_demo_evolved(
        tmp_path / "demo-evolved",
        DemoConfig(seed=0, pool_labels=False),
        progress=False,
        on_checkpoint=events.append,
        base_dir=_shipped_prior(tmp_path / "shipped"),
    )
    lineage = json.loads((folder / "lineage.json").read_text())
    rows = [RoundRow(**row) for row in lineage["table"]]
    print("\n" + format_table(rows))
    assert [r.round for r in rows] == [0, 1, 2]
    # The prior compares better than chance but its scores carry no quality information.
    assert rows[0].compare_acc > 0.6 and abs(rows[0].srcc_sampled) < 0.2
    # Evolution without labels: sampled-score SRCC rises and the scores stay spread.
    assert rows[2].srcc_sampled - rows[0].srcc_sampled >= GAIN_BAR
    assert rows[2].srcc_sampled >= rows[1].srcc_sampled - ROUND2_SLACK
    assert rows[2].score_std > 0.5
    # pool_labels=False voted no extra pool pairs: the last model has no label column.
    assert not math.isnan(rows[0].pseudo_acc_k32) and math.isnan(rows[2].pseudo_acc_k32)
    # Lineage: every version is kept and loads; the hook saw each with its parent.
    assert lineage["base"] == "builtin:demo" and lineage["rounds"] == 2
    assert lineage["checkpoints"] == ["lineage/round-0", "lineage/round-1", "."]
    for relative in lineage["checkpoints"]:
        model = load_model(str(folder / relative), device="cpu")
        assert model.reasoning_default is False  # answer-only prompts, as trained
    assert [e.round for e in events] == [0, 1, 2]
    assert events[0].parent is None
    assert events[1].parent == events[0].path and events[2].parent == events[1].path
    assert events[2].metrics["srcc_sampled"] == rows[2].srcc_sampled
    assert "train" in events[2].metrics["round"]
