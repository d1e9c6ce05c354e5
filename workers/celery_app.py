"""The Celery application: Redis in production, a filesystem queue in the embedded mode."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.signals import beat_embedded_init

from app.procutil import die_with_parent
from app.settings import Settings, get_settings

GPU_QUEUE = "gpu"
DEFAULT_QUEUE = "default"


def celery_config(settings: Settings) -> dict:
    """Celery settings derived from the service settings."""
    data_dir = settings.data_dir.resolve()
    if settings.embedded_broker:
        queue_dir = data_dir / "queue"
        queue_dir.mkdir(parents=True, exist_ok=True)
        broker = "filesystem://"
        transport_options: dict = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(queue_dir / "processed"),
            "control_folder": str(queue_dir / "control"),
            "store_processed": False,
        }
        (queue_dir / "processed").mkdir(exist_ok=True)
    else:
        broker = settings.broker_url
        # Above the longest task, or Redis redelivers a long training task mid-run.
        transport_options = {"visibility_timeout": 24 * 3600}
    backend = settings.result_backend
    if not backend:
        backend = (
            broker
            if broker.startswith("redis")
            else f"db+sqlite:///{data_dir / 'celery-results.sqlite3'}"
        )
    return {
        "broker_url": broker,
        "result_backend": backend,
        "broker_transport_options": transport_options,
        "result_backend_transport_options": {"visibility_timeout": 24 * 3600}
        if backend.startswith("redis")
        else {},
        "task_default_queue": DEFAULT_QUEUE,
        # Model work goes to GPU workers; bookkeeping to any worker.
        "task_routes": {
            "evoq.rounds.refresh": {"queue": GPU_QUEUE},
            "evoq.rounds.vote_chunk": {"queue": GPU_QUEUE},
            "evoq.rounds.train": {"queue": settings.train_queue},
            "evoq.rounds.evaluate": {"queue": GPU_QUEUE},
            "evoq.rounds.calibrate": {"queue": GPU_QUEUE},
        },
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "beat_schedule_filename": str(data_dir / "celerybeat-schedule"),
        "worker_hijack_root_logger": False,
        # What a library prints is not a warning; progress bars are off in workers (run.py).
        "worker_redirect_stdouts_level": "INFO",
        "beat_schedule": {
            "evoq-housekeeping": {
                "task": "evoq.rounds.housekeeping",
                "schedule": settings.housekeeping_seconds,
            }
        },
    }


@beat_embedded_init.connect
def _beat_dies_with_its_worker(**_kwargs: object) -> None:
    # `worker --beat` runs beat in a child process; a SIGKILLed worker would leave it running,
    # still sending housekeeping (one more orphan per restart).
    die_with_parent(os.getppid())  # billiard's child: multiprocessing.parent_process() is None


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app configured from `settings` (default: the environment)."""
    settings = settings or get_settings()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    celery = Celery("evoq", include=["workers.tasks"])
    celery.conf.update(celery_config(settings))
    return celery


celery_app = create_celery()
