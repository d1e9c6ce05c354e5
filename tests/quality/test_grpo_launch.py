"""GRPO in two CPU processes (accelerate launch, gloo): a loadable checkpoint that differs from
its parent, and every reward call of every process saw both images of each of its pairs."""

import json
from collections import defaultdict

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from app.quality.augment import Variant
from app.quality.checkpoint import weights_digest
from app.quality.grpo import GRPORoundConfig
from app.quality.grpo_launch import _key_json, _vote, launch_train_grpo
from app.quality.loading import load_model
from app.quality.voting import VoteResult

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = {}
    for k in range(6):
        path = folder / f"{k}.png"
        Image.fromarray((rng.random((40, 40, 3)) * 255 * (k + 1) / 6).astype("uint8")).save(path)
        paths[str(k)] = str(path)
    return paths


def _votes():
    return [
        VoteResult(str(a), str(b), 3, 1, 0, 1.0 if a > b else 0.0)
        for a in range(6)
        for b in range(a + 1, 6)
    ]


def _two_processes(**overrides):
    base = dict(
        num_generations=2, pairs_per_step=2, max_completion_length=4, device="cpu", num_processes=2
    )
    return GRPORoundConfig(**{**base, **overrides})


def _weights(folder):
    return load_file(str(next(folder.glob("*.safetensors"))))


def test_two_processes_train_whole_pairs_into_a_new_checkpoint(
    tiny_answering_model_dir, image_paths, tmp_path
):
    config = _two_processes(learning_rate=1e-3, max_steps=2, format_reward_weight=1.0)
    steps = []
    out = tmp_path / "candidate"
    result = launch_train_grpo(
        tiny_answering_model_dir,
        _votes(),
        image_paths,
        config,
        out,
        on_progress=lambda step, total: steps.append((step, total)),
        reward_log=tmp_path / "rewards",
        poll_seconds=0.1,
    )
    assert result.checkpoint_dir == out and result.digest == weights_digest(out)
    assert result.metrics["steps"] == 2 and steps[-1] == (2, 2)
    assert not list(tmp_path.glob(".candidate.*"))  # job and staging folders are gone

    load_model(str(out), device="cpu")
    parent, trained = _weights(tiny_answering_model_dir), _weights(out)
    assert parent.keys() == trained.keys()
    assert any(not torch.equal(parent[k], trained[k]) for k in parent)

    calls = defaultdict(list)
    for path in sorted((tmp_path / "rewards").glob("rewards-*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            calls[record["process"]].append(record["rows"])
    assert sorted(calls) == [0, 1]  # both processes computed rewards
    for process, per_call in calls.items():
        assert len(per_call) == 2, (process, per_call)  # one call per step
        for rows in per_call:
            positions = defaultdict(set)
            for pair_id, position in rows:
                positions[pair_id].add(position)
            # Each process gets one whole pair per step (2 pairs / 2 processes), G rows per image.
            assert len(positions) == 1 and all(p == {0, 1} for p in positions.values()), rows
            assert len(rows) == 2 * config.num_generations
    for step in range(2):
        seen = [{pid for pid, _ in calls[p][step]} for p in (0, 1)]
        assert not seen[0] & seen[1]  # the processes split the step's pairs


def test_pairs_per_step_must_split_into_whole_pairs_per_process():
    with pytest.raises(ValueError, match="multiple of num_processes"):
        GRPORoundConfig(pairs_per_step=3, num_processes=2)


def test_a_cancel_stops_every_process_and_writes_nothing(tiny_model_dir, image_paths, tmp_path):
    from app.quality.grpo import TrainingCancelled

    config = _two_processes(max_steps=50)
    steps = []
    with pytest.raises(TrainingCancelled):
        launch_train_grpo(
            tiny_model_dir,
            _votes(),
            image_paths,
            config,
            tmp_path / "candidate",
            should_stop=lambda: bool(steps),
            on_progress=lambda step, total: steps.append(step),
            poll_seconds=0.1,
        )
    assert steps and max(steps) < 50
    assert not list(tmp_path.iterdir())


def _variant_votes():
    """Augment-round votes: a variant beside its reference, and two variants of one image."""
    return [
        VoteResult("0", Variant("0", "blur", 3), 4, 0, 0, 1.0),
        VoteResult(Variant("1", "noise", 2), Variant("1", "jpeg", 5), 3, 1, 0, 1.0),
        VoteResult("2", Variant("3", "blur", 1), 1, 3, 0, 0.0),
        VoteResult(Variant("4", "noise", 4), "5", 0, 4, 0, 0.0),
    ]


def test_votes_on_variants_cross_to_the_processes_as_they_were():
    votes = _variant_votes()
    stored = [{**v.__dict__, "a": _key_json(v.a), "b": _key_json(v.b)} for v in votes]
    assert [_vote(json.loads(json.dumps(row))) for row in stored] == votes


def test_an_augment_round_trains_in_two_processes(tiny_answering_model_dir, image_paths, tmp_path):
    config = _two_processes(learning_rate=1e-3, max_steps=1, format_reward_weight=1.0)
    with pytest.raises(ValueError, match="variant_seed"):
        launch_train_grpo(
            tiny_answering_model_dir, _variant_votes(), image_paths, config, tmp_path / "x"
        )
    out = tmp_path / "candidate"
    result = launch_train_grpo(
        tiny_answering_model_dir,
        _variant_votes(),
        image_paths,  # the references' files only: each process rebuilds the variants
        config,
        out,
        variant_seed=7,
        poll_seconds=0.1,
    )
    assert result.metrics["steps"] == 1 and result.digest == weights_digest(out)
    assert result.metrics["train_pairs"] == 4
