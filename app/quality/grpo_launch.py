"""GRPO in several processes: `accelerate launch` runs `train_grpo` once per process (one per GPU
on CUDA, gloo on CPU) on a job folder holding the round's votes and image paths.

The parent and the launched processes talk through files in the job folder: job.json (input),
progress.json (rank 0, after every step), stop (the parent asks to cancel), result.json (rank 0).

    python -m app.quality.grpo_launch JOB_JSON     (what each launched process runs)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch.distributed as dist

from app.quality.augment import Variant, parse_variant, variant_loader
from app.quality.grpo import TrainingCancelled, TrainResult, train_grpo
from app.quality.grpo_dataset import GRPORoundConfig
from app.quality.images import path_loader
from app.quality.voting import VoteResult

__all__ = ["launch_argv", "launch_train_grpo", "run_job"]


def launch_argv(processes: int, job: Path, port: int) -> list[str]:
    """`accelerate launch` of this module's job runner in `processes` local processes."""
    # --multi_gpu selects accelerate's torchrun launcher; without CUDA the processes use gloo.
    return [
        *(sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"),
        *("--num_processes", str(processes), "--num_machines", "1"),
        *("--mixed_precision", "no", "--dynamo_backend", "no"),
        *("--main_process_port", str(port), "-m", "app.quality.grpo_launch", str(job)),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)  # readers never see half a file


def launch_train_grpo(
    model_dir: str | Path,
    votes: Sequence[VoteResult],
    image_paths: Mapping[str, str],
    config: GRPORoundConfig,
    out_dir: str | Path,
    *,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    reward_log: str | Path | None = None,
    variant_seed: int | None = None,
    poll_seconds: float = 0.5,
) -> TrainResult:
    """`train_grpo` in `config.num_processes` processes; same contract (atomic `out_dir`,
    TrainingCancelled). `image_paths` maps str(image key) to its file; keys become strings.
    Variant keys (augment rounds) are rebuilt in every process from their reference's file
    with `variant_seed`, as `variant_loader` does for the votes."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"checkpoint {out_dir} already exists")
    if variant_seed is None and any(isinstance(k, Variant) for v in votes for k in (v.a, v.b)):
        raise ValueError("votes on variants need the round's variant_seed to rebuild them")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.launch-", dir=out_dir.parent))
    job = {
        "model_dir": str(model_dir),
        "votes": [
            {**dataclasses.asdict(v), "a": _key_json(v.a), "b": _key_json(v.b)} for v in votes
        ],
        "images": dict(image_paths),
        "variant_seed": variant_seed,
        "config": dataclasses.asdict(config),
        "out_dir": str(out_dir),
        "reward_log": None if reward_log is None else str(reward_log),
        "parent_pid": os.getpid(),
    }
    _write_json(job_dir / "job.json", job)
    argv = launch_argv(config.num_processes, job_dir / "job.json", _free_port())
    try:
        with (job_dir / "train.log").open("ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        last = None
        while True:
            running = proc.poll() is None
            progress = _read_json(job_dir / "progress.json")
            if progress is not None and progress != last and on_progress is not None:
                on_progress(progress["step"], progress["max_steps"])
                last = progress
            if not running:
                break
            if should_stop is not None and should_stop():
                (job_dir / "stop").touch()
            time.sleep(poll_seconds)
        result = _read_json(job_dir / "result.json")
        if proc.returncode != 0 or result is None:
            log_tail = (job_dir / "train.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"accelerate launch exited with {proc.returncode}:\n{log_tail}")
        if result.get("cancelled"):
            raise TrainingCancelled(result.get("detail", "cancelled"))
        return TrainResult(Path(result["checkpoint_dir"]), result["digest"], result["metrics"])
    finally:
        if proc.poll() is None:  # the caller was interrupted: take the processes down with it
            proc.kill()
            proc.wait()
        shutil.rmtree(job_dir, ignore_errors=True)


def _key_json(key: Hashable) -> list[str | None]:
    """An image key as [reference, variant spec or None]; `_key` reads it back."""
    if isinstance(key, Variant):
        return [str(key.ref), key.spec]
    return [str(key), None]


def _key(stored: list[str | None]) -> Hashable:
    return parse_variant(stored[0], stored[1])


def _vote(stored: dict[str, Any]) -> VoteResult:
    return VoteResult(**{**stored, "a": _key(stored["a"]), "b": _key(stored["b"])})


def _parent_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_job(job_path: Path) -> None:
    """One launched process: train on the job's data; rank 0 reports progress and the result."""
    job = json.loads(job_path.read_text())
    job_dir = job_path.parent
    rank = int(os.environ.get("RANK", "0"))

    def should_stop() -> bool:
        # A worker killed outright cannot write `stop`: its processes notice it is gone.
        return (job_dir / "stop").exists() or not _parent_alive(job["parent_pid"])

    def progress(step: int, max_steps: int) -> None:
        _write_json(job_dir / "progress.json", {"step": step, "max_steps": max_steps})

    load = path_loader(job["images"])
    if job["variant_seed"] is not None:
        load = variant_loader(load, job["variant_seed"])
    try:
        result = train_grpo(
            job["model_dir"],
            [_vote(v) for v in job["votes"]],
            load,
            GRPORoundConfig(**job["config"]),
            job["out_dir"],
            should_stop=should_stop,
            on_progress=progress,
            reward_log=job["reward_log"],
        )
    except TrainingCancelled as exc:
        if rank == 0:
            _write_json(job_dir / "result.json", {"cancelled": True, "detail": str(exc)})
        return
    if rank == 0:
        _write_json(
            job_dir / "result.json",
            {
                "checkpoint_dir": str(result.checkpoint_dir),
                "digest": result.digest,
                "metrics": result.metrics,
            },
        )


if __name__ == "__main__":
    try:
        run_job(Path(sys.argv[1]))
    finally:
        # Leave the process group before exiting: a process that exits with gloo's threads
        # still up can abort ("terminate called without an active exception") after its work
        # is done, and the launcher then reports the whole job as failed.
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
