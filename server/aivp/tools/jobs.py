"""queue_status and cancel_job: follow, collect and stop jobs by id, also after a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..catalog import resolve
from ..errors import InvalidParameterError
from ..ledger import JobRow
from ..domain.studio import Studio
from ..jobs import Started
from .common import JobResult, as_tool_result, boundary, follow, state_of


class JobLine(BaseModel):
    job_id: str
    status: str
    model: str
    tool: str
    started_by: str | None = None
    created_at: str
    files: list[str]
    estimate_usd: float
    cost_usd: float | None
    sandbox: bool = False
    would_cost_usd: float | None = None
    error: str | None = None


class Cancelled(BaseModel):
    job_id: str
    request_id: str | None = None
    status: str = Field(description="canceled, or still running/fetching when the provider had started it")
    note: str
    cost_usd: float | None = None


class QueueStatus(BaseModel):
    job: JobResult | None = Field(default=None, description="The job asked about")
    recent: list[JobLine] = Field(default=[], description="Recent jobs, newest first (when no job was named)")
    spent_usd: float = Field(description="Real spend: what providers charged")
    committed_usd: float = Field(description="Estimated cost of jobs still running")
    would_cost_usd: float = Field(description="What sandbox jobs would have cost; never spent")
    budget_usd: float | None


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Job status", annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True))
    @boundary
    async def queue_status(
        ctx: Context[Any, Any],
        job_id: Annotated[str | None, Field(description="From a generation call.")] = None,
        model: Annotated[str | None, Field(description="With request_id: its model or endpoint.")] = None,
        request_id: Annotated[str | None, Field(description="A request made outside aivp, to collect.")] = None,
        wait_s: Annotated[float, Field(ge=0, le=600, description="Wait this long for the end.")] = 0,
        output: Annotated[str | None, Field(description="unsaved job: save it here instead.")] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="Recent jobs to list.")] = 10,
        started_by: Annotated[str | None, Field(description="HTTP: only their jobs; 'me'.")] = None,
    ) -> Annotated[CallToolResult, QueueStatus]:
        """A job's state (queue position, logs, elapsed) and, once done, its files; with no job_id, recent jobs and
        spend. Collects jobs that outlived their call, also after a restart; wait_s waits, sending progress."""
        state = state_of(ctx)
        base = _spend(state)
        if job_id is None and request_id is None:
            who = state.caller if started_by == "me" else started_by
            rows = state.ledger.recent(limit, starter=(who,) if started_by else None)
            status = QueueStatus(recent=[_line(r) for r in rows], **base)
            whose = f" started by {who or 'a local client'}" if started_by else ""
            text = "\n".join([f"{len(rows)} recent job(s){whose}; {spend_text(base)}", *map(_text_line, rows)])
            return CallToolResult(content=[TextContent(text=text)], structured_content=status.model_dump(mode="json"))
        note = ""
        if job_id is None:
            started = _adopt(state, model, request_id or "")
        else:
            row = state.runner.get(job_id)
            if row.state == "unknown":  # the submit's answer was lost: look for it at the provider first
                note = await state.runner.settle(row.id)
                row = state.runner.get(row.id)
            if row.state == "unsaved":  # paid, not written: asking again tries the save again
                row = state.runner.retry_save(row.id, output)
            elif output is not None:
                raise InvalidParameterError(f"output only applies to a job whose result could not be saved; job "
                                            f"{row.id} is {row.state}.")
            started = Started(row, False)
        row = await follow(ctx, started, wait_s) if started.row.active else started.row
        base = _spend(state)  # after the wait: what the job came to counts now
        return await _status_result(state, row, base, note)

    @mcp.tool(title="Cancel job", annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True))
    @boundary
    async def cancel_job(
        job_id: Annotated[str, Field(min_length=1, description="From a generation call.")],
        ctx: Context[Any, Any],
    ) -> Annotated[CallToolResult, Cancelled]:
        """Cancel a job at the provider (cancelling a tool call does not stop it). A queued job is dropped free; a
        running one may still finish, be billed and be saved."""
        state = state_of(ctx)
        row, note = await state.runner.cancel(job_id, by=state.caller)
        result = Cancelled(job_id=row.id, request_id=row.request_id, status=row.state, note=note, cost_usd=row.charged_usd)
        text = f"Job {row.id}: {note} Status: {row.state}."
        return CallToolResult(content=[TextContent(text=text)], structured_content=result.model_dump(mode="json"))


def _adopt(state: Studio, model: str | None, request_id: str) -> Started:
    if not model or not request_id.strip():
        raise InvalidParameterError("Pass job_id, or both model and request_id for a request made outside aivp.")
    try:
        found = resolve(model)
    except KeyError:
        if "/" not in model:
            raise
        # a fal endpoint the catalog does not know: follow it anyway; the output decides image or video
        return state.runner.adopt("fal", model.strip("/"), request_id.strip(), model_id=model, task="unknown",
                                  kind="auto", shape="images")
    endpoint = found.endpoint or found.model.endpoints[0]
    route = found.route or next((r for r in endpoint.routes if r.provider == found.provider), endpoint.routes[0])
    return state.runner.adopt(route.provider, route.endpoint, request_id.strip(), model_id=found.model.id,
                              task=endpoint.task, kind=found.model.kind, shape=endpoint.output)


async def _status_result(state: Studio, row: JobRow, base: dict[str, Any], note: str = "") -> CallToolResult:
    try:
        result = await as_tool_result(state, row, note=note)
    except ToolError:
        raise
    payload = QueueStatus(job=JobResult.model_validate(result.structured_content), **base)
    return CallToolResult(content=result.content, structured_content=payload.model_dump(mode="json"))


def _spend(state: Studio) -> dict[str, Any]:
    spend = state.ledger.spend()
    return {"spent_usd": spend["spent_usd"], "committed_usd": spend["committed_usd"],
            "would_cost_usd": spend["would_cost_usd"], "budget_usd": state.budget()}


def spend_text(s: dict[str, Any]) -> str:
    """'$0.00 real spend, $0.00 running; $8.09 would have been charged (sandbox); budget $20.00.'"""
    text = f"${s['spent_usd']:.2f} real spend, ${s['committed_usd']:.2f} running"
    if s["would_cost_usd"]:
        text += f"; ${s['would_cost_usd']:.2f} would have been charged (sandbox, placeholders)"
    return text + (f"; budget ${s['budget_usd']:.2f}." if s["budget_usd"] is not None else ".")


def _line(r: JobRow) -> JobLine:
    return JobLine(job_id=r.id, status=r.state, model=r.model_id, tool=r.tool, started_by=r.started_by,
                   created_at=r.created_at, files=[o["path"] for o in r.outputs], estimate_usd=round(r.estimate_usd, 4),
                   cost_usd=r.charged_usd, sandbox=r.sandbox, would_cost_usd=r.would_cost_usd, error=r.error)


def _text_line(r: JobRow) -> str:
    """One job in a line: id, tool/model, state, age, cost, files."""
    cost = "sandbox" if r.sandbox else f"${r.cost_usd:.3f}" if r.cost_usd is not None else f"est ${r.estimate_usd:.3f}"
    files = [o["path"] for o in r.outputs if not o.get("split_of")] or list(r.spec.targets or ())
    shown = files[0] + (f" +{len(files) - 1}" if len(files) > 1 else "") if files else "-"
    return f"{r.id} {r.tool}/{r.model_id} {r.state} {_age(r.created_at)} {cost} {shown}"


def _age(created_at: str) -> str:
    try:
        s = (datetime.now(UTC) - datetime.fromisoformat(created_at.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{int(s // size)}{unit} ago"
    return f"{max(0, int(s))}s ago"
