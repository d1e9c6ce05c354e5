"""Celery tasks. The round pipeline tasks live in workers/pipeline.py."""

from __future__ import annotations

import os
import socket

from workers.celery_app import celery_app


@celery_app.task(name="evoq.ping")
def ping(payload: str = "pong") -> dict:
    """Round-trip check: echoes the payload with the worker's host and pid."""
    return {"payload": payload, "host": socket.gethostname(), "pid": os.getpid()}
