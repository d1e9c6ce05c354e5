"""The stages of a round as plain functions (no Celery): each reads the round from the
database, acts only when the round is in its status, and returns the tasks to queue next."""

from __future__ import annotations

NextTasks = list[tuple[str, list]]  # (Celery task name, args), queued in order by the caller
