"""A reasoning checkpoint through real rounds (issue 26): builtin:tiny-reasoning on Postgres,
Redis, a Celery worker and an API server. Sampled reasoning votes, GRPO on the reasoning score
prompt with gradient checkpointing and truncated completions, the gate measuring the candidate
in the serving mode, promotion and the served score; then a round too small to move anything is
refused by the gate's no-op check. The tests share one stack; neither needs the other's round."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

from tests.support.round_stack import RoundStack, round_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_DB = 13
BRIGHTNESS = (30, 70, 110, 150, 190, 230)  # the format prior's scores follow brightness
ROUND = {
    "pairs": 6,
    "holdout_fraction": 0.5,  # 3 holdout pairs, 3 training pairs
    "min_holdout_pairs": 2,  # set explicitly: the default (50) is for real rounds
    "votes": 3,
    "vote_mode": "sampled",
    "chunk_size": 6,
    "samples": 4,
    "pairs_per_step": 1,
    "max_steps": 1,
    # Shorter than most of the prior's monologues (tens to a few hundred tokens): some
    # completions are cut off and masked out of the loss, the others carry the update.
    "max_completion_length": 40,
    "format_reward_weight": 1.0,
    "learning_rate": 1e-3,
    "beta": 0.0,  # no reference model: one forward less per step
    "eval_images": 2,
    "eval_samples": 1,
    # The gate's other checks are not under test here: the no-op check and the serving mode are.
    "accuracy_margin": 1.0,
    "min_parse_rate": 0.0,
    "min_score_std": 0.0,
    "max_calibration_residual": 4.0,
    "seed": 0,
}
VOTE_PARSE_FLOOR = 0.5
FINISHED = ("promoted", "rejected", "failed", "cancelled", "awaiting_approval")


def _png(level: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(level + rng.normal(0, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tiny_reasoning_dir) -> Iterator[RoundStack]:
    root = tmp_path_factory.mktemp("reasoning-round")
    # builtin:tiny-reasoning, prebuilt where the stack builds builtins (its data dir).
    shutil.copytree(tiny_reasoning_dir, root / "data" / "models" / "tiny-reasoning")
    with round_stack(
        root,
        redis_db=REDIS_DB,
        EVOQ_BASE_MODEL="builtin:tiny-reasoning",
        EVOQ_TRAIN_GRADIENT_CHECKPOINTING="true",
        # Every anchor is a greedy reasoning answer per version: the fewest the setting allows.
        EVOQ_ANCHOR_SET_SIZE="8",
        EVOQ_ACTIVATION_POLL_SECONDS="0.5",
    ) as s:
        s.start_worker("worker")
        files = [
            ("files", (f"b{i}.png", _png(level, seed=i), "image/png"))
            for i, level in enumerate(BRIGHTNESS)
        ]
        response = httpx.post(f"{s.url}/v1/corpus/images", files=files, timeout=120)
        assert response.status_code == 200 and response.json()["stored"] == len(BRIGHTNESS)
        s.wait_ready("worker")
        yield s


def _score(stack: RoundStack) -> dict:
    """The served score (default mode) of one fixed image."""
    files = [("files", ("probe.png", _png(120, seed=99), "image/png"))]
    response = httpx.post(f"{stack.url}/v1/score", files=files, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


def _wait_serving(stack: RoundStack, version: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{stack.url}/readyz").json().get("model", {}).get("version") != version:
        assert time.monotonic() < deadline, f"the server never swapped to version {version}"
        time.sleep(0.2)


def _version(stack: RoundStack, version_id: int) -> dict:
    return httpx.get(f"{stack.url}/v1/models/{version_id}").json()


def _weights(folder: str) -> dict[str, np.ndarray]:
    return load_file(str(Path(folder) / "model.safetensors"))


def _run(stack: RoundStack, config: dict) -> dict:
    round_id = stack.start_round(config)
    done = stack.wait_round(round_id, lambda b: b["status"] in FINISHED, timeout=600)
    assert done["status"] in ("promoted", "rejected"), (done["status"], done["error"])
    return done


def test_a_reasoning_round_trains_gates_and_serves_the_trained_prompt(stack) -> None:
    parent = httpx.get(f"{stack.url}/v1/models").json()["active_version"]
    before = _score(stack)
    assert before["model_version"] == parent and before["mode"] == "deterministic"

    done = _run(stack, ROUND)
    metrics = done["gate"]["metrics"]
    print("round 1 gate", done["gate"], "train", done["progress"]["train"])  # shown with -s
    # Reasoning votes: most parse (only a boxed answer counts); the rest are counted, not used.
    assert metrics["vote_parse_rate"] is not None
    assert metrics["vote_parse_rate"] >= VOTE_PARSE_FLOOR, metrics
    # Reasoning rollouts: completions longer than an answer-only score (8 tokens), some cut off.
    train = done["progress"]["train"]
    assert train["steps"] == ROUND["max_steps"]
    assert train["completion_length_avg"] > 8 and train["clipped_ratio_avg"] > 0, train
    # The gate measured both versions in the serving mode: the reasoning prompt GRPO trained.
    assert metrics["eval_mode"] == "deterministic" and metrics["eval_prompt"] == "reasoning"
    assert metrics["holdout_pairs"] >= ROUND["min_holdout_pairs"], metrics
    checks = {c["name"]: c for c in done["gate"]["checks"]}
    assert checks["changed"]["passed"] and checks["holdout_pairs"]["passed"], checks
    assert done["status"] == "promoted", done["gate"]

    candidate = done["candidate_version_id"]
    old = _weights(_version(stack, parent)["checkpoint_path"])
    new = _weights(_version(stack, candidate)["checkpoint_path"])
    assert old.keys() == new.keys()
    moved = [name for name in old if not np.array_equal(old[name], new[name])]
    assert len(moved) > len(old) // 2, f"{len(moved)} of {len(old)} tensors changed"

    _wait_serving(stack, candidate)
    after = _score(stack)
    assert after["model_version"] == candidate and after["mode"] == "deterministic"
    print("served raw score", before["raw_score"], "->", after["raw_score"])
    assert after["raw_score"] != pytest.approx(before["raw_score"], abs=1e-4), (before, after)


def test_a_round_too_small_to_move_the_model_is_rejected_as_unchanged(stack) -> None:
    serving = httpx.get(f"{stack.url}/v1/models").json()["active_version"]
    before = _score(stack)

    # Its votes need no monologue: the no-op check reads the trained model, not the labels.
    done = _run(stack, {**ROUND, "learning_rate": 1e-12, "seed": 1, "vote_mode": "logits"})
    print("round 2 gate", done["gate"])
    assert done["status"] == "rejected", done["gate"]
    checks = {c["name"]: c for c in done["gate"]["checks"]}
    assert not checks["changed"]["passed"]
    assert [r for r in done["gate"]["reasons"] if r.startswith("changed: unchanged")]
    # The no-op check alone refused it.
    assert [c for c in checks.values() if not c["passed"]] == [checks["changed"]]
    assert done["gate"]["metrics"]["score_change"] < ROUND.get("min_score_change", 1e-3)

    assert httpx.get(f"{stack.url}/v1/models").json()["active_version"] == serving
    assert _score(stack)["model_version"] == serving == before["model_version"]
