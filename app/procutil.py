"""Child processes that must not outlive their parent."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send `sig` to this process when its parent dies (no-op elsewhere); call it
    in the child, with the pid the parent had."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, sig)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the request was made
        os.kill(os.getpid(), sig)
