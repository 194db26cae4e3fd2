"""The small runner every multi-job operation shares (batches, asset sheets, keyframe candidates).

A `Run` is stages of `Item`s: each item becomes one ordinary job (prepare + the job runner: checked,
budget-capped, idempotent, recorded); a stage starts when the one before it has finished (a sheet's
side views wait for its front view), and at most `limit` jobs are in flight. The run lives in the
server's task group, so the tool call returns after wait_s while the jobs go on; calling the tool
again with the same arguments joins or reuses the same jobs instead of paying twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from pydantic import BaseModel, Field

from ..errors import AivpError
from ..jobs import JobRequest
from .studio import Studio

log = logging.getLogger("aivp.batch")
DONE_STATES = ("completed", "failed", "canceled", "unknown")


class ItemResult(BaseModel):
    label: str
    status: str = Field(description="completed, exists (skipped), estimate (dry run), waiting, queued/running (still going), failed, invalid, blocked")
    job_id: str | None = None
    files: list[str] = []
    model: str | None = None
    estimate_usd: float | None = None
    cost_usd: float | None = None
    sandbox: bool = False  # sent to a sandbox: a placeholder, nothing charged
    error: str | None = None


@dataclass
class Item:
    """One job of a run; `make` builds its request when its turn comes (its inputs may not exist before)."""

    label: str
    make: Callable[[], tuple[JobRequest, str]] | None = None
    status: str = "waiting"  # before a job exists: waiting | exists | estimate | invalid | blocked | failed
    job_id: str | None = None
    model: str | None = None
    estimate_usd: float | None = None
    reused: bool = False
    shared: bool = False
    finished: bool = False
    files: list[str] = field(default_factory=list)  # for items without a job (exists)
    error: str | None = None


@dataclass
class Run:
    stages: list[list[Item]]
    limit: int = 16
    done: anyio.Event = field(default_factory=anyio.Event)

    @property
    def items(self) -> list[Item]:
        return [i for s in self.stages for i in s]

    def pending(self) -> list[Item]:
        return [i for i in self.items if i.make is not None and i.status == "waiting" and not i.finished]


def invalid(label: str, exc: Exception, state: Studio) -> Item:
    return Item(label, status="invalid", finished=True, error=state.settings.redact(str(exc)))


async def drive(state: Studio, run: Run) -> None:
    """Run the stages in order (in the server's task group); a stage that did not finish blocks the rest."""
    limit = anyio.Semaphore(run.limit)
    try:
        for n, stage in enumerate(run.stages):
            async with anyio.create_task_group() as tg:
                for item in stage:
                    if item.make is not None and item.status == "waiting":
                        tg.start_soon(_one, state, item, limit)
            short = [i for i in stage if not _ok(state, i)]
            if short:
                for later in (i for s in run.stages[n + 1:] for i in s if i.status == "waiting"):
                    later.status, later.finished = "blocked", True
                    later.error = f"Not started: {short[0].label} did not finish ({short[0].error or 'see its status'})."
                break
    finally:
        run.done.set()


def _ok(state: Studio, item: Item) -> bool:
    if item.job_id:
        return state.runner.get(item.job_id).state == "completed"
    return item.status == "exists"


async def _one(state: Studio, item: Item, limit: anyio.Semaphore) -> None:
    async with limit:
        try:
            assert item.make is not None
            req, _ = item.make()
            item.model, item.estimate_usd = req.built.model.id, round(req.estimate.usd, 4)
            started = await state.runner.start(req, started_by=state.caller)
            item.job_id = started.row.id
            item.reused = not started.created and started.row.state == "completed"
            item.shared = not started.created  # another call already paid for this job (done or in flight)
            await state.runner.wait(started.row.id, math.inf)
        except AivpError as exc:
            item.status, item.error = "failed", state.settings.redact(str(exc))
        except Exception:  # a bug must not take the server's task group down
            log.exception("batch item %s failed", item.label)
            item.status, item.error = "failed", "aivp hit an internal error; the server log (stderr) has the details."
        finally:
            item.finished = True


Report = Callable[[int, int], Awaitable[None]]  # (finished, total) -> send a progress notification


async def start_and_follow(state: Studio, run: Run, wait_s: float | None, report: Report | None = None) -> None:
    """Start the run in the server and wait up to wait_s for it, reporting progress as items finish."""
    state.runner.spawn(drive, state, run)
    total = len(run.items)
    sent = -1
    with anyio.move_on_after(state.settings.wait_s if wait_s is None else wait_s):
        while True:
            n = sum(1 for i in run.items if i.finished)
            if n > sent:
                sent = n
                try:
                    if report is not None:
                        await report(n, total)
                except Exception as exc:  # a lost notification must not abort the call
                    log.debug("progress notification failed: %s", exc)
            if run.done.is_set():
                break
            with anyio.move_on_after(0.2):
                await run.done.wait()


def result_of(state: Studio, item: Item) -> ItemResult:
    if not item.job_id:
        return ItemResult(label=item.label, status=item.status, files=item.files, model=item.model,
                          estimate_usd=item.estimate_usd, cost_usd=0.0 if item.status == "exists" else None,
                          error=item.error)
    row = state.runner.get(item.job_id)
    return ItemResult(label=item.label, status=row.state, job_id=row.id, files=[o["path"] for o in row.outputs],
                      model=row.model_id, estimate_usd=round(row.estimate_usd, 4),
                      cost_usd=0.0 if item.reused or item.shared else row.charged_usd, sandbox=row.sandbox,
                      error=state.settings.redact(row.error) if row.error and row.state != "completed" else None)


def unfinished(results: list[ItemResult]) -> list[ItemResult]:
    return [r for r in results if r.status not in (*DONE_STATES, "exists", "estimate", "invalid", "blocked")]
