"""A Celery worker with one fault injected at the checkpoint write (tests only).

EVOQ_TEST_FAULT=hang: when a checkpoint's files are all written to its staging folder, write
the staging path to EVOQ_TEST_FAULT_MARKER and block there, so a test can SIGKILL the worker
mid-write. EVOQ_TEST_FAULT=enospc: the write fails as on a full disk (where a test cannot mount
a small file system). Run as `python -m tests.support.faulty_worker`.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import app.quality.checkpoint as checkpoint


def _hang(tmp_folder: str | Path, _final_folder: str | Path) -> str:
    Path(os.environ["EVOQ_TEST_FAULT_MARKER"]).write_text(str(tmp_folder))
    threading.Event().wait()  # until the test kills this process
    raise AssertionError("unreachable")


def _disk_full(tmp_folder: str | Path, _final_folder: str | Path) -> str:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_folder))


FAULTS = {"hang": _hang, "enospc": _disk_full}


def main() -> None:
    """Patch the checkpoint publisher, then run a normal worker (all queues, beat)."""
    checkpoint.publish_checkpoint = FAULTS[os.environ["EVOQ_TEST_FAULT"]]
    from workers.run import run_worker

    run_worker(queues=["default", "gpu"], pool="solo", concurrency=1, beat=True)


if __name__ == "__main__":
    main()
