"""The one place the service's configuration lives: environment variables prefixed EVOQ_."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.settings_types import FormatSet, upload_setting


class Settings(BaseSettings):
    """Every setting of the service; docs/settings.md's table is generated from these fields."""

    model_config = SettingsConfigDict(env_prefix="EVOQ_", extra="ignore")

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        Path("./evoq-data"),
        description="Local data directory: image store, checkpoints, embedded database and queue.",
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the registry. Empty: a SQLite file in the data directory "
        "(embedded mode). Production: postgresql+psycopg://user:pass@host/db.",
    )
    broker_url: str = Field(
        "",
        description="Celery broker URL. Empty: a filesystem queue in the data directory "
        "(embedded mode, a worker child process is started by `evoq serve`). "
        "Production: redis://host:6379/0.",
    )
    result_backend: str = Field(
        "",
        description="Celery result backend. Empty: the broker URL when it is Redis, else a "
        "SQLite file in the data directory.",
    )
    embedded_worker: bool = Field(
        True,
        description="`evoq serve` starts a Celery worker child process when the broker is "
        "the embedded filesystem queue.",
    )

    # --- HTTP ----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `evoq serve` binds.")
    port: int = Field(8000, description="Port `evoq serve` binds.")
    admin_token: str = Field(
        "",
        description="Bearer token for /v1/admin. Empty: admin endpoints answer 503 (disabled). "
        "It also satisfies every other role.",
    )
    write_token: str = Field(
        "",
        description="Bearer token for writing the corpus (upload, opt-out, delete). Empty: "
        "uploads need no token, and opt-out and delete take the admin token once one is set.",
    )
    read_token: str = Field(
        "",
        description="Bearer token for reading (scores, comparisons, models, corpus listings). "
        "Empty: reading is open. The write and admin tokens also read.",
    )
    log_level: str = Field("INFO", description="Log level of the JSON logs.")

    # --- model ---------------------------------------------------------------------------
    base_model: str = Field(
        "builtin:demo-evolved",
        description="Base model: a local folder, a Hugging Face hub id "
        "(e.g. Qwen/Qwen2.5-VL-7B-Instruct), builtin:demo-evolved (the tiny demo model after two "
        "label-free evolution rounds, shipped with the package), builtin:demo or builtin:tiny.",
    )
    device: str = Field("auto", description="Torch device: auto (CUDA when present), cpu, cuda.")
    dtype: str = Field("auto", description="Torch dtype: auto, float32, bfloat16, float16.")
    max_pixels: int = Field(
        448 * 448, description="Images are resized so their pixel count stays within this."
    )

    generation_backend: Literal["hf", "vllm"] = Field(
        "hf",
        description="Engine of the workers' votes: hf (transformers) or vllm (a vLLM engine "
        "process per checkpoint, run by EVOQ_VLLM_PYTHON; see scripts/setup-vllm).",
    )
    vllm_python: Path = Field(
        Path(".venv-vllm/bin/python"),
        description="Interpreter with vLLM installed (scripts/setup-vllm makes .venv-vllm).",
    )
    vllm_gpu_memory: float = Field(
        0.85,
        gt=0,
        le=1,
        description="Share of the GPU a process's vLLM engines take together (vLLM's "
        "gpu_memory_utilization): a worker runs one engine at a time with all of it; the API "
        "splits it in two so a swap can start the new engine before the old one stops.",
    )

    # --- serving ------------------------------------------------------------------------
    batch_max_size: int = Field(
        8, ge=1, description="Most images scored in one model call (micro-batching)."
    )
    batch_max_wait_ms: float = Field(
        10.0, ge=0, description="Longest an image waits for companions before its batch runs."
    )
    queue_max: int = Field(
        256, ge=1, description="Images waiting to be scored before requests get 503 + Retry-After."
    )
    activation_poll_seconds: float = Field(
        1.0,
        gt=0,
        description="How often each API process checks the registry for a new activation.",
    )
    serving_backend: Literal["hf", "vllm"] = Field(
        "hf",
        description="Engine of the API's scores and comparisons: hf (transformers, see "
        "EVOQ_SCORING_PROCESS) or vllm (a vLLM engine process per served version, run by "
        "EVOQ_VLLM_PYTHON).",
    )
    scoring_process: bool = Field(
        True,
        description="Run the serving model in a child process of the API, so model calls do not "
        "share the GIL with request handling (measured +30% batched sampled throughput); false "
        "keeps it in the API process (one process less, and its memory).",
    )

    # --- evolution ----------------------------------------------------------------------
    round_heartbeat_seconds: float = Field(
        5.0, gt=0, description="How often a worker running a round refreshes its heartbeat."
    )
    round_stale_seconds: float = Field(
        300.0,
        gt=0,
        description="A running round whose heartbeat is older than this is marked failed "
        "(its worker died).",
    )
    train_queue: str = Field(
        "gpu",
        description="Celery queue of the train stage. On a multi-GPU node name a queue (e.g. "
        "train) that only the worker seeing every GPU consumes.",
    )
    train_processes: int = Field(
        1,
        ge=1,
        description="Processes the train stage runs GRPO in (`accelerate launch`): one per GPU "
        "of the worker's node (gloo on CPU). A round's pairs_per_step must be a multiple of it.",
    )
    train_deepspeed: str = Field(
        "",
        description="DeepSpeed for multi-process training: empty (off), zero2, zero3 (7B full "
        "fine-tunes) or a JSON config path. Needs CUDA and the deepspeed package; untested in CI.",
    )
    train_gradient_checkpointing: bool = Field(
        False, description="Gradient checkpointing in GRPO: less GPU memory, more compute."
    )
    train_rollout_backend: Literal["hf", "vllm"] = Field(
        "hf",
        description="Engine of the GRPO rollouts: hf (transformers generate) or vllm (TRL's "
        "colocated vLLM taking 0.3 of the GPU beside training, with the fixes in "
        "app/quality/vllm_rollouts.py); vllm falls back to hf where vLLM is not installed in "
        "the worker's environment.",
    )
    train_vllm_server_url: str = Field(
        "",
        description="With EVOQ_TRAIN_ROLLOUT_BACKEND=vllm: the URL of a vLLM server that "
        "generates the rollouts (TRL's server mode: training on some GPUs, the server on "
        "others); empty = a vLLM engine colocated with training. Start the server as "
        "docs/scale.md says.",
    )
    vote_redeliveries: int = Field(
        3,
        ge=0,
        description="Times a voting round whose heartbeat went stale re-sends its unvoted chunks "
        "(a worker died mid-chunk) before it is marked failed.",
    )
    round_pending_timeout_seconds: float = Field(
        900.0,
        gt=0,
        description="A round still pending this long after it was created is marked failed "
        "(no worker took its task: none running, or the broker lost the message).",
    )
    housekeeping_seconds: float = Field(
        30.0,
        gt=0,
        description="Celery beat interval of housekeeping: stale rounds, continuous mode.",
    )

    # --- score scale ----------------------------------------------------------------------
    anchor_set_size: int = Field(
        256,
        ge=8,
        le=10_000,
        description="Images in the anchor set frozen at the first activation; every version's "
        "score map is fitted on them. A seeded corpus sample when the corpus holds this many "
        "trainable images, else synthetic anchors.",
    )
    anchor_seed: int = Field(
        11, ge=0, description="Seed of the anchor sample (corpus) or of the synthetic anchors."
    )

    # --- uploads (default and help text of each: UploadLimits in app/corpus/limits.py) -----
    max_file_bytes: int = upload_setting("max_file_bytes")
    max_request_bytes: int = upload_setting("max_request_bytes")
    max_upload_pixels: int = upload_setting("max_upload_pixels")
    allowed_formats: FormatSet = upload_setting("allowed_formats")
    max_files_per_request: int = upload_setting("max_files_per_request")
    max_archive_members: int = upload_setting("max_archive_members")
    max_archive_uncompressed_bytes: int = upload_setting("max_archive_uncompressed_bytes")
    max_member_compression_ratio: float = upload_setting("max_member_compression_ratio")

    @property
    def resolved_database_url(self) -> str:
        """The registry URL, defaulting to a SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'evoq.sqlite3').resolve()}"

    @property
    def embedded_broker(self) -> bool:
        """True when no external broker is configured and the filesystem queue is used."""
        return not self.broker_url or self.broker_url.startswith("filesystem://")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
