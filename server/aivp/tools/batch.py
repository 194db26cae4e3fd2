"""batch_generate, and the small runner every multi-job tool shares (asset sheets, keyframe candidates).

A `Run` is stages of `Item`s: each item becomes one ordinary job (prepare + the job runner: checked,
budget-capped, idempotent, recorded); a stage starts when the one before it has finished (a sheet's
side views wait for its front view), and at most `limit` jobs are in flight. The run lives in the
server's task group, so the tool call returns after wait_s while the jobs go on; calling the tool
again with the same arguments joins or reuses the same jobs instead of paying twice.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError, validate_call

from ..errors import AivpError
from ..jobs import JobRequest
from .calls import CALLS
from .common import AppState, boundary, state_of
from .generate import PAID
from .prepare import Call, prepare

log = logging.getLogger("aivp.tools")
DONE_STATES = ("completed", "failed", "canceled", "unknown")


class ItemResult(BaseModel):
    label: str
    status: str = Field(description="completed, exists (skipped), estimate (dry run), waiting, queued/running (still going), failed, invalid, blocked")
    job_id: str | None = None
    files: list[str] = []
    model: str | None = None
    estimate_usd: float | None = None
    cost_usd: float | None = None
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


def invalid(label: str, exc: Exception, state: AppState) -> Item:
    return Item(label, status="invalid", finished=True, error=state.settings.redact(str(exc)))


async def drive(state: AppState, run: Run) -> None:
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


def _ok(state: AppState, item: Item) -> bool:
    if item.job_id:
        return state.runner.get(item.job_id).state == "completed"
    return item.status == "exists"


async def _one(state: AppState, item: Item, limit: anyio.Semaphore) -> None:
    async with limit:
        try:
            assert item.make is not None
            req, _ = item.make()
            item.model, item.estimate_usd = req.built.model.id, round(req.estimate.usd, 4)
            started = await state.runner.start(req)
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


async def start_and_follow(ctx: Context[Any, Any], run: Run, wait_s: float | None) -> None:
    """Start the run in the server and wait up to wait_s for it, reporting progress as items finish."""
    state = state_of(ctx)
    state.runner.spawn(drive, state, run)
    total = len(run.items)
    sent = -1
    with anyio.move_on_after(state.settings.wait_s if wait_s is None else wait_s):
        while True:
            n = sum(1 for i in run.items if i.finished)
            if n > sent:
                sent = n
                try:
                    await ctx.report_progress(n, total, f"{n}/{total} done")
                except Exception as exc:  # a lost notification must not abort the call
                    log.debug("progress notification failed: %s", exc)
            if run.done.is_set():
                break
            with anyio.move_on_after(0.2):
                await run.done.wait()


def result_of(state: AppState, item: Item) -> ItemResult:
    if not item.job_id:
        return ItemResult(label=item.label, status=item.status, files=item.files, model=item.model,
                          estimate_usd=item.estimate_usd, cost_usd=0.0 if item.status == "exists" else None,
                          error=item.error)
    row = state.runner.get(item.job_id)
    return ItemResult(label=item.label, status=row.state, job_id=row.id, files=[o["path"] for o in row.outputs],
                      model=row.model_id, estimate_usd=round(row.estimate_usd, 4),
                      cost_usd=0.0 if item.reused or item.shared else row.cost_usd,
                      error=state.settings.redact(row.error) if row.error and row.state != "completed" else None)


def unfinished(results: list[ItemResult]) -> list[ItemResult]:
    return [r for r in results if r.status not in (*DONE_STATES, "exists", "estimate", "invalid", "blocked")]


# ---------------------------------------------------------------- batch_generate

class BatchItem(BaseModel):
    label: str = Field(min_length=1, description="Your name for this item; results carry it.")
    tool: Literal["generate_image", "edit_image", "generate_video"] = Field(default="generate_image", description="Which tool's arguments `args` holds.")
    args: dict[str, Any] = Field(description="That tool's arguments (prompt, model, references, output ...), except wait_s and dry_run.")


class BatchResult(BaseModel):
    items: list[ItemResult]
    done: bool
    estimate_usd: float = Field(description="Sum of the estimates of the items that were started")
    cost_usd: float = Field(description="Charged so far (reused results cost nothing)")
    next_step: str


def batch_item(state: AppState, item: BatchItem) -> Item:
    """Check one item now (arguments and their types, model, values, inputs); a bad item fails alone."""
    fn = CALLS[item.tool]
    known = ", ".join(sorted(inspect.signature(fn).parameters))
    try:
        call: Call = validate_call(fn)(**item.args)
        req, why = prepare(state, call)
    except ValidationError as exc:
        unknown = [str(e["loc"][-1]) for e in exc.errors() if e["type"] == "unexpected_keyword_argument"]
        other = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
                 if e["type"] != "unexpected_keyword_argument"]
        said = ([f"{item.tool} does not take {', '.join(map(repr, unknown))} here (its arguments: {known})"]
                if unknown else []) + other
        return Item(item.label, status="invalid", finished=True, error="; ".join(said) + ".")
    except TypeError as exc:  # the generic call refused the keywords
        return Item(item.label, status="invalid", finished=True,
                    error=f"{item.tool}: {exc}. Its arguments: {known}.")
    except AivpError as exc:
        return invalid(item.label, exc, state)
    return Item(item.label, make=lambda: (req, why), model=req.built.model.id, estimate_usd=round(req.estimate.usd, 4))


def _refuse_twins(items: list[Item]) -> None:
    """Two identical items would be one job (identical requests are never paid twice): say so instead."""
    first: dict[str, str] = {}
    for item in items:
        if item.make is None:
            continue
        key = item.make()[0].idem_key()
        if key in first:
            item.make, item.status, item.finished = None, "invalid", True
            item.error = (f"identical to item {first[key]!r}, so it would be the same job and the same file. For "
                          "another take give it a different seed (args.seed) or args.fresh=true.")
        else:
            first[key] = item.label


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Batch generate", annotations=PAID)
    @boundary
    async def batch_generate(
        items: Annotated[list[BatchItem], Field(min_length=1, max_length=100, description="The jobs: {label, tool, args}, e.g. {\"label\": \"scene_a\", \"args\": {\"prompt\": \"...\", \"aspect_ratio\": \"9:16\"}}.")],
        ctx: Context[Any, Any],
        concurrency: Annotated[int, Field(ge=1, le=16, description="Jobs in flight at once.")] = 4,
        wait_s: Annotated[float | None, Field(ge=0, le=600, description="Seconds to wait (default 45); unfinished items keep running and come back with job ids.")] = None,
    ) -> Annotated[CallToolResult, BatchResult]:
        """Run many generate_image / edit_image / generate_video calls in parallel, models mixed freely.

        Every item is checked first (a bad item is reported, the rest run), then each is an ordinary
        job: idempotent, budget-checked, recorded. A failing item never stops the others. Calling again
        with the same items collects unfinished ones without paying twice; queue_status(job_id) also works."""
        state = state_of(ctx)
        labels = [i.label for i in items]
        if len(set(labels)) != len(labels):
            from ..errors import InvalidParameterError

            raise InvalidParameterError(f"Labels must be unique; repeated: {sorted({x for x in labels if labels.count(x) > 1})}.")
        built = [batch_item(state, i) for i in items]
        _refuse_twins(built)
        run = Run([built], limit=concurrency)
        await start_and_follow(ctx, run, wait_s)
        results = [result_of(state, i) for i in run.items]
        going = unfinished(results)
        failed = [r for r in results if r.status in ("failed", "invalid", "canceled", "unknown")]
        if going:
            nxt = (f"{len(going)} item(s) still running in the server. Call batch_generate again with the same items "
                   "(nothing is paid twice) or queue_status(job_id) to collect them.")
        elif failed:
            nxt = "Fix the failed items (see error) and send only those again."
        else:
            nxt = "Done. Every file is in the project with a record in image/log or video/log."
        out = BatchResult(items=results, done=not going,
                          estimate_usd=round(sum(r.estimate_usd or 0 for r in results if r.job_id), 4),
                          cost_usd=round(sum(r.cost_usd or 0 for r in results), 4), next_step=nxt)
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        text = f"Batch of {len(results)}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + f". {nxt}"
        return CallToolResult(content=[TextContent(text=text)], structured_content=out.model_dump(mode="json"))
