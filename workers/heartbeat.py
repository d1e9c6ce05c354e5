"""A round's liveness while a worker acts on it: heartbeat, progress, cancel checks."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from app.db import session_scope
from app.rounds.models import Round
from app.settings import get_settings
from app.timeutil import utcnow


@contextlib.contextmanager
def heartbeat(round_id: int) -> Iterator[None]:
    """Refresh the round's heartbeat from a background thread while the body runs."""
    interval = get_settings().round_heartbeat_seconds
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception), session_scope() as db:
                found = db.get(Round, round_id)
                if found is not None:
                    found.heartbeat_at = utcnow()

    touch(round_id)
    thread = threading.Thread(target=beat, name=f"heartbeat-{round_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def touch(round_id: int, **progress: Any) -> None:
    """Refresh the heartbeat now and merge `progress` into the round's progress."""
    with session_scope() as db:
        found = db.get(Round, round_id, with_for_update=True)
        if found is not None:
            found.heartbeat_at = utcnow()
            if progress:
                found.progress = {**(found.progress or {}), **progress}


def cancel_requested(round_id: int) -> bool:
    """True when the round is gone, asked to stop, or no longer running."""
    with session_scope() as db:
        found = db.get(Round, round_id)
        return found is None or found.cancel_requested or found.running_lock is None
