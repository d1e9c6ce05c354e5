"""Stage 3: GRPO on the voted training pairs into the round's checkpoint folder."""

from __future__ import annotations

import dataclasses
import math
import shutil
from typing import Any

from app.db import session_scope
from app.quality.augment import reference_of
from app.quality.grpo_dataset import GRPORoundConfig
from app.quality.zero_configs import deepspeed_config_file
from app.rounds import service as rounds
from app.settings import get_settings
from workers.heartbeat import cancel_requested, heartbeat, touch
from workers.model_cache import release_models
from workers.stages import NextTasks
from workers.state import (
    checkpoint_dir,
    image_paths,
    load_round,
    refreshed_dir,
    remove_unregistered_checkpoint,
    round_image_loader,
    rounds_advance,
    votes,
    voting_model,
)


def train(round_id: int) -> NextTasks:
    """GRPO on the voted training pairs; the checkpoint appears only when complete."""
    # Imported on use: TRL is heavy and only the GPU workers run this stage.
    from app.quality.grpo import TrainingCancelled, train_grpo

    loaded = load_round(round_id, "training")
    if loaded is None:
        return []
    config, parent_path = loaded
    start_path = voting_model(round_id, parent_path)  # the refreshed parent, if the round has one
    voted = votes(round_id, holdout=False)
    out_dir = checkpoint_dir(round_id)
    if out_dir.exists():  # a redelivered task after a crash: nothing registered it, start over
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    release_models()

    def progress(step: int, max_steps: int) -> None:
        touch(round_id, train_step=step, train_max_steps=max_steps)

    grpo = _with_deployment(config.grpo_config(), out_dir)
    keys = {k for v in voted for k in (v.a, v.b)}
    controls: dict[str, Any] = {
        "should_stop": lambda: cancel_requested(round_id),
        "on_progress": progress,
    }
    with heartbeat(round_id):
        try:
            if grpo.num_processes > 1:
                from app.quality.grpo_launch import launch_train_grpo

                # Each process rebuilds an augment round's variants from their references.
                paths = image_paths({str(reference_of(k)) for k in keys})
                seed = config.seed if config.augment else None
                result = launch_train_grpo(
                    start_path, voted, paths, grpo, out_dir, variant_seed=seed, **controls
                )
            else:
                load = round_image_loader(config, keys)
                result = train_grpo(start_path, voted, load, grpo, out_dir, **controls)
        except TrainingCancelled:
            shutil.rmtree(refreshed_dir(round_id), ignore_errors=True)
            with session_scope() as db:
                rounds.finish(db=db, round_id=round_id, status="cancelled", error="cancelled")
            remove_unregistered_checkpoint(round_id)
            return []
    shutil.rmtree(refreshed_dir(round_id), ignore_errors=True)  # evaluation uses the parent
    touch(
        round_id,
        checkpoint=str(result.checkpoint_dir),
        digest=result.digest,
        train=json_safe({k: v for k, v in result.metrics.items() if k != "per_step"}),
        train_per_step=json_safe(result.metrics.get("per_step", {})),
    )
    if rounds_advance(round_id, "training", "evaluating"):
        return [("evoq.rounds.evaluate", [round_id])]
    return []


def _with_deployment(config: GRPORoundConfig, out_dir) -> GRPORoundConfig:
    """The round's GRPO config with this worker's process count, DeepSpeed, checkpointing and
    the pixel bound its votes used."""
    settings = get_settings()
    return dataclasses.replace(
        config,
        num_processes=settings.train_processes,
        max_pixels=settings.max_pixels,
        gradient_checkpointing=settings.train_gradient_checkpointing,
        rollout_backend=settings.train_rollout_backend,
        vllm_server_url=settings.train_vllm_server_url or None,
        deepspeed=deepspeed_config_file(settings.train_deepspeed, out_dir.parent / ".deepspeed"),
    )


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float as None: Postgres JSON has no NaN (a round at beta 0
    logs no KL, whose mean is NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
