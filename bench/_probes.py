"""Probes for the benchmarks: wrap a function to count and time its calls, and find what blocks the
event loop (a beat on the loop, a watchdog thread sampling the loop thread's stack when it is late)."""

from __future__ import annotations

import asyncio
import collections
import functools
import sys
import threading
import time
import traceback
from typing import Any


class Tally:
    """Calls of one wrapped function: how many, wall seconds in all, the longest."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.max_s = 0.0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


def wrap(owner: Any, name: str, tally: Tally) -> None:
    """Replace owner.name (a function or coroutine function) by one that counts and times its calls."""
    original = getattr(owner, name)
    if asyncio.iscoroutinefunction(original):

        @functools.wraps(original)
        async def timed_async(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await original(*a, **kw)
            finally:
                dt = time.perf_counter() - t
                tally.calls += 1
                tally.seconds += dt
                tally.max_s = max(tally.max_s, dt)

        setattr(owner, name, timed_async)
        return

    @functools.wraps(original)
    def timed(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            dt = time.perf_counter() - t
            tally.calls += 1
            tally.seconds += dt
            tally.max_s = max(tally.max_s, dt)

    setattr(owner, name, timed)


class StallWatch:
    """Finds what blocks the event loop: a coroutine on the loop beats every 10 ms (its lateness is the
    loop's lag); a thread samples the loop thread's stack every 5 ms whenever the last beat is more
    than `threshold` old, so the samples show the synchronous code the loop is stuck in."""

    def __init__(self, threshold: float = 0.05) -> None:
        self.threshold = threshold
        self.lags: list[float] = []
        self.samples: collections.Counter[tuple[str, ...]] = collections.Counter()
        self.beat = time.monotonic()
        self.tid = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    async def beat_loop(self, stop: asyncio.Event, tick: float = 0.01) -> None:
        self._thread.start()
        while not stop.is_set():
            t = time.monotonic()
            await asyncio.sleep(tick)
            self.beat = time.monotonic()
            self.lags.append(self.beat - t - tick)
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            if time.monotonic() - self.beat > self.threshold:
                frame = sys._current_frames().get(self.tid)
                if frame is not None:
                    self.samples[where(frame)] += 1


def where(frame: Any) -> tuple[str, ...]:
    """The innermost frame, then the innermost aivp frames (file:line function), outermost last."""
    stack = traceback.extract_stack(frame)[::-1]
    inner = f"{_short(stack[0].filename)}:{stack[0].lineno} {stack[0].name}"
    mine = [f"{_short(f.filename)}:{f.lineno} {f.name}" for f in stack if "/aivp/" in f.filename][:4]
    return (inner, *[m for m in mine if m != inner])


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/server/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
