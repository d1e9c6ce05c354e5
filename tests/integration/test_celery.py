"""A trivial task round-trips through a real broker and a real worker process."""

from __future__ import annotations

import pytest
import redis

from app.settings import Settings
from tests.support.services import REDIS_URL, base_env, evoq_argv, start_process, stop
from workers.celery_app import create_celery

pytestmark = pytest.mark.integration


def _roundtrip(settings: Settings, env: dict[str, str], log_path) -> None:
    celery = create_celery(settings)
    worker = start_process(
        evoq_argv("worker", "--queues", "default,gpu", "--pool", "solo"), env, log_path
    )
    try:
        result = celery.send_task("evoq.ping", args=["hello"])
        answer = result.get(timeout=90)
        assert answer["payload"] == "hello"
        assert answer["pid"] == worker.pid  # the solo pool runs tasks in the worker process
    finally:
        assert stop(worker) == 0, log_path.read_text()[-3000:]


def test_ping_through_redis_and_a_worker_process(tmp_path) -> None:
    db_url = f"{REDIS_URL}/9"
    redis.Redis.from_url(db_url).flushdb()
    overrides = {"EVOQ_DATA_DIR": str(tmp_path), "EVOQ_BROKER_URL": db_url}
    settings = Settings(data_dir=tmp_path, broker_url=db_url)
    _roundtrip(settings, base_env(**overrides), tmp_path / "worker.log")


def test_ping_through_the_embedded_filesystem_queue(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.embedded_broker
    _roundtrip(settings, base_env(EVOQ_DATA_DIR=str(tmp_path)), tmp_path / "worker.log")
