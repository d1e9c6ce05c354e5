"""Queue round tasks by name, without importing the stage code (the web layer uses this)."""

from __future__ import annotations

from workers.celery_app import celery_app


def enqueue_round(round_id: int) -> None:
    """Start the pipeline of a committed pending round."""
    celery_app.send_task("evoq.rounds.prepare", args=[round_id])


def send(next_tasks: list[tuple[str, list]]) -> None:
    """Queue the follow-up tasks a stage returned, in order."""
    for name, args in next_tasks:
        celery_app.send_task(name, args=args)
