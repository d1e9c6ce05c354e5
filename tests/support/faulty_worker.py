"""A Celery worker whose checkpoint write can be made to fail (tests only).

Before publishing each checkpoint it reads the file named by EVOQ_TEST_FAULT_FILE:
- empty or missing: publish normally;
- `hang`: write the staging folder's path to `<file>.writing` and block there, so a test can
  SIGKILL the worker mid-write;
- `enospc`: fail as on a full disk (where a test cannot mount a small file system).
Run as `python -m tests.support.faulty_worker`.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import app.quality.checkpoint as checkpoint

_publish = checkpoint.publish_checkpoint


def _publish_with_fault(tmp_folder: str | Path, final_folder: str | Path) -> str:
    control = Path(os.environ["EVOQ_TEST_FAULT_FILE"])
    fault = control.read_text().strip() if control.exists() else ""
    if fault == "hang":
        Path(f"{control}.writing").write_text(str(tmp_folder))
        threading.Event().wait()  # until the test kills this process
    if fault == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_folder))
    return _publish(tmp_folder, final_folder)


def main() -> None:
    """Patch the checkpoint publisher, then run a normal worker (all queues, beat)."""
    checkpoint.publish_checkpoint = _publish_with_fault
    from workers.run import run_worker

    run_worker(queues=["default", "gpu"], pool="solo", concurrency=1, beat=True)


if __name__ == "__main__":
    main()
