"""Workers log no progress bars: tqdm (plain, transformers', huggingface_hub's) is off in a
worker process, and what a library prints reaches the log as INFO, not WARNING."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.settings import Settings
from workers.celery_app import celery_config
from workers.run import QUIET_PROGRESS_ENV

ROOT = Path(__file__).resolve().parents[1]
BARS = """
import sys
if sys.argv[1] == "quiet":
    from workers.run import quiet_progress_bars
    quiet_progress_bars()
from tqdm import tqdm
from huggingface_hub.utils import tqdm as hub_tqdm
from transformers.utils import logging
for bar in (tqdm, hub_tqdm, logging.tqdm):
    for _ in bar(range(3), desc=f"bar-{bar.__module__}", mininterval=0):
        pass
"""


def _stderr(mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in QUIET_PROGRESS_ENV}
    done = subprocess.run(
        [sys.executable, "-c", BARS, mode],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**env, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_progress_bars_are_off_in_workers() -> None:
    assert _stderr("loud").count("bar-") >= 3  # the bars do draw outside a worker
    assert "bar-" not in _stderr("quiet") and "it/s" not in _stderr("quiet")


def test_printed_output_is_logged_as_info(tmp_path) -> None:
    assert celery_config(Settings(data_dir=tmp_path))["worker_redirect_stdouts_level"] == "INFO"
