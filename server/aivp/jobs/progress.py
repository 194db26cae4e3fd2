"""Live progress of the jobs this process drives: who waits on which job, and what to tell them.

The ledger holds a job's durable state; this holds what only matters while the process lives
(elapsed time, recent log lines, the callers waiting on a job), so memory stays flat: a finished
job with nobody waiting is forgotten at once.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ..ledger import JobRow


@dataclass(frozen=True)
class Progress:
    """One progress event of a job, forwarded to MCP progress notifications."""

    job_id: str
    state: str
    elapsed_s: float
    message: str
    terminal: bool = False


@dataclass
class Live:
    """What the process knows of a job while it follows it."""

    started: float = field(default_factory=time.monotonic)
    done: anyio.Event = field(default_factory=anyio.Event)
    subscribers: set[MemoryObjectSendStream[Progress]] = field(default_factory=set)
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    driving: bool = False
    scope: anyio.CancelScope | None = None


class Watchers:
    """Live state per job id, and the fan-out of progress events to everyone waiting."""

    def __init__(self) -> None:
        self._live: dict[str, Live] = {}

    def of(self, job_id: str) -> Live:
        return self._live.setdefault(job_id, Live())

    def restart(self, job_id: str) -> None:
        """A job that ended goes on again (an unsaved result saved anew): waiters must not see it as done."""
        live = self._live.get(job_id)
        if live is not None and live.done.is_set():
            self._live[job_id] = Live(subscribers=live.subscribers)

    def peek(self, job_id: str) -> Live | None:
        return self._live.get(job_id)

    def event(self, row: JobRow, message: str | None = None, stopped: bool = False) -> Progress:
        live = self._live.get(row.id)
        elapsed = time.monotonic() - live.started if live else 0.0
        return Progress(row.id, row.state, elapsed, message or describe_state(row), terminal=stopped or not row.active)

    def publish(self, row: JobRow, message: str | None = None, stopped: bool = False) -> None:
        live = self.of(row.id)
        event = self.event(row, message, stopped)
        for s in list(live.subscribers):
            try:
                s.send_nowait(event)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
        if not row.active:
            live.done.set()
            if not live.subscribers and not live.driving:
                self._live.pop(row.id, None)  # nothing waits on a finished job: keep memory flat


def describe_state(row: JobRow) -> str:
    """A job's state in a few words, for progress messages and next steps."""
    if row.state == "queued":
        pos = f" (position {row.queue_position})" if row.queue_position is not None else ""
        return f"queued at {row.provider}{pos}"
    if row.state == "running":
        last = f": {row.logs[-1]}" if row.logs else ""
        return f"running at {row.provider}{last}"
    return {"pending": "preparing", "submitting": "submitting", "fetching": "downloading the result",
            "completed": "done", "failed": "failed", "canceled": "cancelled",
            "unknown": "submit outcome unknown"}.get(row.state, row.state)
