"""Running a storyboard plan in the server: dependencies first, a concurrency limit, plan tables kept current.

A run lives in the server's task group, so the tool call that starts it can return while it goes on.
Every step goes through the same job runner as a tool call: a step that already has its file costs
nothing, an identical request in flight is joined, and a finished one is reused, so running the same
storyboard again (also after a crash) never pays twice for a shot that is done.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel

from ..errors import AivpError, SubmitUncertain
from ..jobs import Progress
from ..layout import plan_type
from ..errors import InputError
from ..ledger import new_id, now_iso
from ..domain.clips import clip_marks
from ..domain.dialogue import VOICED
from ..domain.prepare import prepare
from ..domain.studio import Studio
from .plan import Step

log = logging.getLogger("aivp.pipeline")
FAILED = ("failed", "blocked", "invalid")


@dataclass
class Event:
    step: str
    shots: list[int]
    message: str


@dataclass
class PipelineRun:
    """One run of a storyboard: its steps and how far each got."""

    steps: dict[str, Step]
    concurrency: int
    retry_unknown: bool = False  # send again the steps whose earlier submit's answer was lost
    args: dict[str, Any] = field(default_factory=dict)  # the run_storyboard arguments it was started with
    redo: frozenset[int] = frozenset()  # the shots it makes again
    id: str = field(default_factory=new_id)
    started_at: str = field(default_factory=now_iso)
    status: str = "running"
    finished_at: str | None = None
    done: anyio.Event = field(default_factory=anyio.Event)
    listeners: set[Callable[[Event], Awaitable[None]]] = field(default_factory=set)

    async def emit(self, step: Step, message: str) -> None:
        event = Event(step.key, step.shots, message)
        for fn in list(self.listeners):
            try:
                await fn(event)
            except Exception as exc:  # a listener (a client gone away) must not stop the run
                log.debug("pipeline listener failed: %s", exc)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for s in self.steps.values():
            counts[s.status] = counts.get(s.status, 0) + 1
        return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


async def estimate(state: Studio, steps: list[Step]) -> None:
    """Fill model, endpoint, mode and cost of each step to do, by a dry run: nothing is sent."""
    planned = frozenset(t for s in steps if s.status != "exists" for t in s.targets)
    for s in steps:
        if s.status == "exists" and _made_by(state, s):
            continue  # the plan shows what made the file, not what would make it now
        try:
            req, why = prepare(state, s.make(state, planned), dry_run=True, planned=planned)
        except AivpError as exc:
            s.status, s.error = "invalid", str(exc)
            continue
        if VOICED in why and VOICED not in s.note:
            s.note += f"; {why[why.index(VOICED):]}"
        s.model, s.endpoint, s.mode = req.built.model.id, req.built.route.endpoint, req.mode
        s.sandbox = state.settings.sandboxed(req.provider)
        s.estimate_usd = 0.0 if s.status == "exists" else req.estimate.usd


def _made_by(state: Studio, step: Step) -> bool:
    """Fill an existing step's model, endpoint and mode from the record of its first file; False without one."""
    kind = "video" if step.plan_kind == "video" else "image"
    record = state.project.read_json(state.project.record_path(kind, state.project.root / step.targets[0]))
    if not record.get("model"):
        return False
    step.model, step.endpoint = str(record["model"]), str(record.get("endpoint") or record["model"])
    step.mode, step.estimate_usd = str(record.get("mode") or "-"), 0.0
    return True


def write_plan_rows(state: Studio, steps: list[Step]) -> None:
    """Rows in image/plan.md and video/plan.md for every file of the plan (people's own rows are kept).

    Each table is rewritten once, not once per row: a 30-shot plan has ~80 rows. A clip a person marked
    failed keeps its mark unless this run makes it again."""
    marked = clip_marks(state.project)
    for kind in ("image", "video"):
        rows = [(t, plan_type(t), s.endpoint or s.model, s.mode or "-", {"exists": "done", "invalid": "failed"}.get(
            s.status, s.status)) for s in steps if s.plan_kind == kind for t in s.targets
            if not (s.status == "exists" and t in marked)]
        if rows:
            state.project.update_plan_rows(kind, rows)


async def execute(state: Studio, run: PipelineRun) -> None:
    """Run every step once its inputs exist, at most `concurrency` jobs at a time."""
    finished = {key: anyio.Event() for key in run.steps}
    slots = PrioritySlots(max(1, run.concurrency))
    rank = chain_lengths(run.steps)
    order = {key: i for i, key in enumerate(run.steps)}

    async def one(step: Step) -> None:
        try:
            for dep in step.deps:
                await finished[dep].wait()
                before = run.steps[dep]
                if before.status in FAILED:
                    step.status = "blocked"
                    step.error = f"needs {', '.join(before.targets)}, which failed: {before.error}"
                    _set_rows(state, step, "failed")
                    await run.emit(step, f"blocked: {before.key} failed")
                    return
            if step.status in ("exists", "invalid"):
                return
            # a free slot goes to the step with the longest chain of work behind it, not to the first in line:
            # keyframes that clips wait for go before clips nothing waits for (~one wave less on 30 shots)
            await slots.acquire((-rank[step.key], order[step.key]))
            try:
                await _run_step(state, run, step)
            finally:
                slots.release()
        except AivpError as exc:
            step.status, step.error = "failed", str(exc)
            _set_rows(state, step, "failed")
            await run.emit(step, f"failed: {exc}")
        except Exception as exc:  # a bug or a full disk fails this step, never the server
            log.exception("storyboard step %s failed", step.key)
            step.status, step.error = "failed", f"aivp could not finish this step ({type(exc).__name__}: {exc})"
            _set_rows(state, step, "failed")
        finally:
            finished[step.key].set()

    try:
        async with anyio.create_task_group() as tg:
            for step in run.steps.values():
                tg.start_soon(one, step)
    finally:
        statuses = {s.status for s in run.steps.values()}
        run.status = "done" if not statuses & set(FAILED) else ("failed" if statuses <= {*FAILED, "exists"} else "partial")
        if not statuses <= {"done", "exists", *FAILED}:
            run.status = "stopped"  # the server is shutting down; running it again picks up from here
        run.finished_at = now_iso()
        run.done.set()


def chain_lengths(steps: dict[str, Step]) -> dict[str, int]:
    """For each step, how many steps the longest chain that waits on it holds (itself included)."""
    children: dict[str, list[str]] = {k: [] for k in steps}
    for key, step in steps.items():
        for dep in step.deps:
            if dep in children:
                children[dep].append(key)
    memo: dict[str, int] = {}

    def length(key: str) -> int:
        if key not in memo:
            memo[key] = 1 + max((length(c) for c in children[key]), default=0)
        return memo[key]

    return {k: length(k) for k in steps}


class PrioritySlots:
    """A semaphore that hands each free slot to the waiter with the smallest priority.

    A waiter yields once before slots are handed out, so steps that become ready together (the first
    steps of a run) compete on priority rather than on who asked first.
    """

    def __init__(self, n: int) -> None:
        self.free = n
        self.waiters: list[tuple[tuple[int, int], int, anyio.Event]] = []
        self.seq = 0

    async def acquire(self, priority: tuple[int, int]) -> None:
        event = anyio.Event()
        self.seq += 1
        entry = (priority, self.seq, event)
        heapq.heappush(self.waiters, entry)
        try:
            await anyio.lowlevel.checkpoint()
            self._dispatch()
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # the slot arrived as we were cancelled: pass it on
            else:
                self.waiters.remove(entry)
                heapq.heapify(self.waiters)
            raise

    def _dispatch(self) -> None:
        while self.free > 0 and self.waiters:
            self.free -= 1
            heapq.heappop(self.waiters)[2].set()

    def release(self) -> None:
        self.free += 1
        self._dispatch()


async def _run_step(state: Studio, run: PipelineRun, step: Step) -> None:
    call = step.make(state, frozenset())
    if step.fresh:  # the shots named to be made again: a new take replaces the file
        call.fresh, call.overwrite = True, True
    req, why = prepare(state, call)
    step.model, step.endpoint, step.mode = req.built.model.id, req.built.route.endpoint, req.mode
    try:
        started = await state.runner.start(req, started_by=state.caller)
    except SubmitUncertain as exc:
        if not run.retry_unknown:
            raise SubmitUncertain(f"{exc} For this storyboard, run again with retry_unknown=true to send the steps "
                                  "whose answer was lost (after checking the provider's dashboard).") from None
        req.fresh = True  # asked for: send it again
        started = await state.runner.start(req, started_by=state.caller)
    step.job_id, step.status = started.row.id, "queued"
    _set_rows(state, step, "queued")
    await run.emit(step, f"{step.kind} {', '.join(step.targets)}: queued ({why})")

    async def relay(event: Progress) -> None:
        step.status = "running" if event.state in ("queued", "running", "fetching") else step.status
        await run.emit(step, f"{step.kind} {step.targets[0]}: {event.message}")

    row = await state.runner.wait(step.job_id, math.inf, relay)
    while row.active:  # the runner stopped following (lost contact); it retries, so keep waiting
        await anyio.sleep(5)
        row = await state.runner.wait(step.job_id, math.inf, relay)
    if row.state == "completed":
        step.status, step.error = "done", None
        await run.emit(step, f"{step.kind} done: {', '.join(o['path'] for o in row.outputs)}")
    else:
        step.status, step.error = "failed", row.error or row.state
        _set_rows(state, step, "failed")
        await run.emit(step, f"{step.kind} failed: {step.error}")


def _set_rows(state: Studio, step: Step, status: str) -> None:
    """Best effort: a plan table that cannot be written must not fail the step or the run."""
    for t in step.targets:
        try:
            state.project.update_plan(step.plan_kind, t, type_=plan_type(t), model=step.endpoint or step.model,
                                      mode=step.mode or "-", status=status)
        except (OSError, ValueError, InputError) as exc:
            log.warning("could not update the plan row of %s: %s", t, exc)
