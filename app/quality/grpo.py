"""Online stage: GRPO with the fidelity reward on voted pairs (TRL GRPOTrainer, score prompt).

The round config and the pair dataset live in app/quality/grpo_dataset.py (re-exported here);
this module runs the trainer and writes the checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from transformers import PrinterCallback, TrainerCallback, TrainingArguments

from app.quality import prompts, vllm_rollouts, vllm_server
from app.quality.checkpoint import DIGEST_FILE, publish_checkpoint, write_atomically
from app.quality.grpo_dataset import (
    GRPORoundConfig,
    build_pair_dataset,
    resolve_prompting,
    training_pairs,
)
from app.quality.loading import bound_processor, copy_prompt_marker
from app.quality.processor import load_processor
from app.quality.reward import FidelityReward, format_reward
from app.quality.voting import VoteResult

__all__ = [
    "GRPORoundConfig",
    "TrainResult",
    "TrainingCancelled",
    "build_pair_dataset",
    "resolve_prompting",
    "train_grpo",
    "training_pairs",
]


@dataclass
class TrainResult:
    """A written checkpoint, its weights digest and the training metrics."""

    checkpoint_dir: Path
    digest: str
    metrics: dict[str, Any]


class TrainingCancelled(RuntimeError):
    """Raised when `should_stop` asked training to stop; no checkpoint was written."""


class _Control(TrainerCallback):
    """Reports progress after each optimizer step and stops when the caller asks."""

    def __init__(
        self,
        should_stop: Callable[[], bool] | None,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        self.should_stop = should_stop
        self.on_progress = on_progress
        self.cancelled = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.on_progress is not None and state.is_world_process_zero:
            self.on_progress(state.global_step, state.max_steps)
        if self.should_stop is not None and _any_process(self.should_stop()):
            self.cancelled = True
            control.should_training_stop = True
        return control


def _any_process(flag: bool) -> bool:
    """True when `flag` is set in any training process: all stop at the same step, since a
    process stopping alone would leave the others waiting in a collective forever."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    from accelerate import PartialState

    value = torch.tensor([float(flag)], device=PartialState().device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _process_rank() -> int:
    return int(os.environ.get("RANK", "0"))


class _RecordedFidelity(FidelityReward):
    """The fidelity reward, also appending each call's (pair_id, position) rows to a JSON-lines
    file per process: an audit that every reward call saw both images of its pairs."""

    def __init__(self, folder: Path, gamma: float) -> None:
        super().__init__(gamma=gamma)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"rewards-{_process_rank()}.jsonl"

    def __call__(self, completions, pair_id, position, p_star, **kwargs):
        rows = [[int(i), int(pos)] for i, pos in zip(pair_id, position, strict=True)]
        with self.path.open("a") as fh:
            fh.write(json.dumps({"process": _process_rank(), "rows": rows}) + "\n")
        return super().__call__(completions, pair_id, position, p_star, **kwargs)


def _use_cuda(config: GRPORoundConfig) -> bool:
    if config.device == "cuda":
        return True
    return config.device == "auto" and torch.cuda.is_available()


# transformers 5.x renamed gradient_checkpointing to activation_checkpointing (old name warns).
_CHECKPOINTING_ARG = (
    "activation_checkpointing"
    if "activation_checkpointing" in {f.name for f in dataclasses.fields(TrainingArguments)}
    else "gradient_checkpointing"
)


def _trl_config(
    config: GRPORoundConfig, work_dir: Path, n_steps: int, vllm_len: int | None = None
) -> Any:
    from trl import GRPOConfig

    cuda = _use_cuda(config)
    bf16 = config.precision == "bf16" or (
        config.precision == "auto" and cuda and torch.cuda.is_bf16_supported()
    )
    completions_per_step = 2 * config.pairs_per_step * config.num_generations
    return GRPOConfig(
        output_dir=str(work_dir),
        use_cpu=not cuda,
        # fp32 master weights on every path; bf16 is autocast only. AdamW stepping bf16 weights
        # rounds a 3e-7 update away on almost every weight (0.23% of them moved in 10 steps).
        bf16=bf16,
        model_init_kwargs={"dtype": "float32"},
        **{_CHECKPOINTING_ARG: config.gradient_checkpointing},
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        shuffle_dataset=False,
        seed=config.seed,
        data_seed=config.seed,
        max_steps=n_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0,
        max_grad_norm=config.max_grad_norm,
        per_device_train_batch_size=completions_per_step
        // (config.gradient_accumulation_steps * config.num_processes),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # One generation batch = one optimizer step = whole pairs: partners share a reward call.
        # With several processes each takes a contiguous slice of it (TRL's sampler, no
        # shuffling), pairs_per_step / num_processes whole pairs, so partners stay together.
        generation_batch_size=completions_per_step,
        deepspeed=config.deepspeed,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        mask_truncated_completions=bool(config.mask_truncated_completions),
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        beta=config.beta,
        loss_type=config.loss_type,
        reward_weights=[1.0, config.format_reward_weight] if config.format_reward_weight else None,
        # vLLM rollouts when vllm_len is given: colocated (app/quality/vllm_rollouts.py) or
        # from a server (app/quality/vllm_server.py).
        **(
            vllm_server.trl_server_args(config.vllm_server_url, vllm_len)
            if config.vllm_server_url and vllm_len is not None
            else vllm_rollouts.trl_vllm_args(vllm_len, config.vllm_gpu_memory)
        ),
    )


_LOGGED = {
    "reward": "reward_mean",
    "reward_std": "reward_std",
    "kl": "kl",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "parse_rate": "parse_rate",
    "loss": "loss",
    "grad_norm": "grad_norm",
    "learning_rate": "learning_rate",
    "completions/mean_length": "completion_length",
    "completions/clipped_ratio": "clipped_ratio",
    "step_time": "step_time_s",
}


def _step_metrics(log_history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-step series from the trainer's log history, plus their means."""
    steps = [entry for entry in log_history if "step" in entry and "reward" in entry]
    series: dict[str, list[float]] = {name: [] for name in _LOGGED.values()}
    for entry in steps:
        for key, name in _LOGGED.items():
            if key in entry:
                series[name].append(float(entry[key]))
    out: dict[str, Any] = {"steps": len(steps), "per_step": series}
    for name, values in series.items():
        finite = [v for v in values if math.isfinite(v)]
        out[f"{name}_avg"] = sum(finite) / len(finite) if finite else math.nan
    return out


def train_grpo(
    model_dir: str | Path,
    votes: Sequence[VoteResult],
    load_image: Callable[[Hashable], Any],
    config: GRPORoundConfig,
    out_dir: str | Path,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    reward_log: str | Path | None = None,
) -> TrainResult:
    """Train `model_dir` with GRPO on the usable voted pairs and write the result to `out_dir`.

    `out_dir` must not exist; it appears only once complete (weights, processor, digest file).
    `should_stop` is polled after every step; if it returns True, TrainingCancelled is raised and
    nothing is written. `on_progress(step, max_steps)` is called after every step (by the main
    process). With `config.num_processes` > 1 every process of an `accelerate launch` calls
    this (see app/quality/grpo_launch.py). `reward_log`: a folder where each process records the
    pair rows of every reward call.
    """
    from trl import GRPOTrainer

    from app.quality.grpo_prefix import SharedPrefixGRPOTrainer

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"checkpoint {out_dir} already exists")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != config.num_processes:
        raise ValueError(
            f"config.num_processes is {config.num_processes} but {world} process(es) run; "
            "start several with app.quality.grpo_launch.launch_train_grpo"
        )
    config = resolve_prompting(config, model_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.trainer-", dir=out_dir.parent))
    try:
        # The checkpoint gets the parent's own processor, not the bounded one (a deployment
        # setting): saved from the one load, not read again at the end.
        (processor := load_processor(model_dir)).save_pretrained(work_dir / "parent-processor")
        # The pixel bound voting and scoring use (load_model's), and their upright images.
        processor, max_pixels = bound_processor(processor, config.max_pixels)
        config = dataclasses.replace(config, max_pixels=max_pixels)
        dataset = build_pair_dataset(training_pairs(votes), load_image, config)
        n_steps = len(dataset) // (2 * config.pairs_per_step)
        rewards: list[Any] = [
            FidelityReward(gamma=config.gamma)
            if reward_log is None
            else _RecordedFidelity(Path(reward_log), config.gamma)
        ]
        if config.format_reward_weight:
            rewards.append(format_reward)
        control = _Control(should_stop, on_progress)
        use_vllm = vllm_rollouts.rollouts_via_vllm(config.rollout_backend)
        vllm_len = None
        if use_vllm:
            messages = prompts.score_messages(bool(config.reasoning))
            vllm_len = vllm_rollouts.rollout_context_len(
                processor, messages, max_pixels, config.max_completion_length or 1024
            )
        # The vLLM path is the one tests/quality/test_vllm_rollouts.py runs: TRL's own trainer.
        shared = config.shared_prefill and not use_vllm
        trainer_class = SharedPrefixGRPOTrainer if shared else GRPOTrainer
        args = _trl_config(config, work_dir, n_steps, vllm_len)
        server = use_vllm and bool(config.vllm_server_url)
        # TRL passes a colocated vLLM no dtype (it would run fp32 weights in bf16): say it.
        # Without CUDA a server takes the weights by disk, not by TRL's NCCL rendezvous.
        dtype = "bfloat16" if args.bf16 else "float32"
        if server:
            building = vllm_server.without_communicator(
                vllm_server.sync_mode("cuda" if _use_cuda(config) else "cpu")
            )
        elif use_vllm:
            building = vllm_rollouts.explicit_dtype(dtype)
        else:
            building = contextlib.nullcontext()
        with building:
            trainer = trainer_class(
                model=str(model_dir),
                reward_funcs=rewards,
                args=args,
                train_dataset=dataset,
                processing_class=processor,
                callbacks=[control],
            )
        if server:
            vllm_server.install_server(trainer, vllm_len, work_dir / "vllm-sync")
        elif use_vllm:
            vllm_rollouts.install(trainer)
        # Progress goes to `on_progress` and metrics to the result; no printing from a worker.
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        if control.cancelled:
            raise TrainingCancelled(f"stopped at step {trainer.state.global_step}")
        metrics = _step_metrics(trainer.state.log_history)
        metrics["train_pairs"] = len(training_pairs(votes))
        metrics["rollout_backend"] = ("vllm-server" if server else "vllm") if use_vllm else "hf"
        digest = _save(trainer, model_dir, work_dir / "parent-processor", out_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return TrainResult(out_dir, digest, metrics)


def _save(trainer: Any, model_dir: str | Path, processor_dir: Path, out_dir: Path) -> str:
    """Write the model, its parent's processor (from `processor_dir`) and marker atomically."""

    def complete(staging: Path) -> None:
        shutil.copytree(processor_dir, staging, dirs_exist_ok=True)
        copy_prompt_marker(model_dir, staging)
        # A pickle of the trainer's arguments: unsafe to load and not part of the model.
        (staging / "training_args.bin").unlink(missing_ok=True)

    def write(staging: Path) -> None:
        trainer.save_model(str(staging))
        complete(staging)

    accelerator = trainer.accelerator
    if accelerator.num_processes == 1:
        return write_atomically(out_dir, write)
    # Every process takes part in saving (ZeRO-3 gathers its shards); the main one publishes.
    staging = out_dir.parent / f".{out_dir.name}.partial-distributed"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    trainer.save_model(str(staging))
    if accelerator.is_main_process:
        try:
            complete(staging)
            publish_checkpoint(staging, out_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    accelerator.wait_for_everyone()
    return (out_dir / DIGEST_FILE).read_text().strip()
