"""What every tool shares: the app state, the error boundary and the shape of a job result.

A job result is a short text line, structured content (`JobResult`), a small thumbnail as an
ImageContent under a byte budget, and resource links to the full files. A video or a full-size
image is never inlined.
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from ..domain.studio import Studio
from ..errors import AivpError
from ..http.links import file_path, mime_type, signed_url
from ..jobs import Progress, Started, describe_state
from ..ledger import JobRow
from ..settings import Settings

log = logging.getLogger("aivp.tools")
THUMB_BYTES = 40_000
THUMB_SIDE = 320


def state_of(ctx: Context[Any, Any]) -> Studio:
    """The server's Studio (settings, project, ledger, runner), built in the lifespan, as this caller sees it.

    Over HTTP with auth the copy names the caller (the token's subject), which jobs record as started_by."""
    studio = ctx.request_context.lifespan_context
    assert isinstance(studio, Studio)
    who = caller()
    return replace(studio, caller=who) if who is not None else studio


def caller() -> str | None:
    """The authenticated caller of this request (token subject, else client id); None on stdio or without auth."""
    token = get_access_token()
    who = (token.subject or token.client_id) if token is not None else None
    return who[:200] if who else None


def progress_reporter(ctx: Context[Any, Any]) -> Callable[[int, int], Awaitable[None]]:
    """(done, total) -> an MCP progress notification, for runs of several jobs."""

    async def report(done: int, total: int) -> None:
        await ctx.report_progress(done, total, f"{done}/{total} done")

    return report


P = ParamSpec("P")
R = TypeVar("R")


def boundary(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn aivp's errors into ToolError (the only message that reaches the client), keys scrubbed."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ToolError:
            raise
        except AivpError as exc:
            settings = _settings_from(kwargs)
            text = settings.redact(str(exc)) if settings else str(exc)
            raise ToolError(text) from None
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            log.exception("tool %s failed", fn.__name__)
            raise ToolError(
                f"aivp hit an internal error in {fn.__name__}; the server log (stderr) has the details. "
                "Jobs already submitted are safe in the ledger: queue_status() lists them."
            ) from None

    return wrapper


def _settings_from(kwargs: dict[str, Any]) -> Settings | None:
    ctx = kwargs.get("ctx")
    try:
        return state_of(ctx).settings if ctx is not None else None
    except Exception:
        return None


class FileOut(BaseModel):
    path: str = Field(description="Project-relative path of the file")
    absolute_path: str
    uri: str = Field(description="aivp:// resource URI to read the file through the server")
    kind: str
    url: str | None = Field(default=None, description="The provider's URL of the output (may expire)")
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    has_audio: bool | None = None
    check: dict[str, Any] | None = Field(default=None, description="Decode/duration check of a clip")
    poster: str | None = Field(default=None, description="A clip's poster frame (video/posters/)")
    download_url: str | None = Field(default=None, description="Over HTTP: a link to the file, valid 1 h")


class JobResult(BaseModel):
    """A job's state and, when done, its files."""

    job_id: str
    status: str = Field(description="pending, submitting, queued, running, fetching, completed, failed, canceled, unknown, unsaved")
    done: bool
    model: str
    endpoint: str
    provider: str
    request_id: str | None = None
    reused: bool = Field(default=False, description="True when an identical earlier job answered this call at no cost")
    started_by: str | None = Field(default=None, description="Who started it (over HTTP)")
    files: list[FileOut] = []
    estimate_usd: float | None = Field(description="What aivp expects the job to cost; null when the price is unknown")
    cost_usd: float | None = None
    sandbox: bool = Field(default=False, description="Sent to a sandbox: a placeholder, nothing charged")
    would_cost_usd: float | None = Field(default=None, description="A sandbox job's price on the real provider")
    seed: int | None = None
    queue_position: int | None = None
    logs: list[str] = []
    elapsed_s: float | None = None
    warnings: list[str] = []
    error: str | None = None
    request: dict[str, Any] | None = Field(default=None, description="With dry_run: the checked native input that would be sent")
    next_step: str


def file_uri(rel: str) -> str:
    return "aivp://files/" + quote(rel)


def job_result(state: Studio, row: JobRow, *, reused: bool = False) -> JobResult:
    project = state.project
    files = []
    for o in row.outputs:
        files.append(FileOut(
            path=o["path"], absolute_path=str(project.root / o["path"]), uri=file_uri(o["path"]), kind=o.get("kind", "image"),
            url=o.get("url"), bytes=o.get("bytes"), width=o.get("width"), height=o.get("height"),
            duration_s=o.get("duration_s"), has_audio=o.get("has_audio"), check=o.get("check"), poster=o.get("poster"),
            download_url=download_url(state.settings, o["path"]),
        ))
    seed = (row.result or {}).get("seed") if isinstance(row.result, dict) else None
    return JobResult(
        job_id=row.id, status=row.state, done=not row.active, model=row.model_id, endpoint=row.endpoint,
        provider=row.provider, request_id=row.request_id, reused=reused, started_by=row.started_by, files=files,
        estimate_usd=round(row.estimate_usd, 4), cost_usd=row.charged_usd if not reused else 0.0,
        sandbox=row.sandbox, would_cost_usd=row.would_cost_usd if not reused else None,
        seed=seed if isinstance(seed, int) else None, queue_position=row.queue_position, logs=row.logs[-5:],
        elapsed_s=_elapsed(row), warnings=[*row.spec.warnings, *_check_warnings(row)],
        error=state.settings.redact(row.error) if row.error else None,
        next_step=state.settings.redact(next_step(row, reused)),
    )


def download_url(settings: Settings, path: str) -> str | None:
    """Over HTTP (`aivp serve --http`): a signed link to the file on this server; None on stdio."""
    if not settings.download_base or settings.link_key is None:
        return None
    return signed_url(settings.download_base, settings.link_key.get().encode(), file_path(path))


def _check_warnings(row: JobRow) -> list[str]:
    out = []
    for o in row.outputs:
        check = o.get("check") or {}
        if check.get("ok") is False:
            out.append(f"{o['path']} failed its check ({check.get('message')}); look at it before using it, and "
                       "regenerate with fresh=true if it is broken.")
        if o.get("converted_from"):
            out.append(f"{o['path']} arrived as {o['converted_from']} and was re-encoded to match its extension.")
    return out


def next_step(row: JobRow, reused: bool = False) -> str:
    if row.state == "completed":
        return ("An identical job already made these files; nothing was charged. Pass fresh=true for a new take."
                if reused else "Done. The files are in the project; read them through their uri or path.")
    if row.active and row.error_code == "save_failed":
        return row.error or "Saving the output failed; call queue_status again to retry."
    if row.active:
        wait = 10 if row.state in ("queued", "pending", "submitting") else 15
        trouble = f" Last problem: {row.error}" if row.error else ""
        return (f"Still {describe_state(row)}. Call queue_status(job_id='{row.id}', wait_s=30) in about {wait} s; "
                f"the job keeps running on the server meanwhile.{trouble}")
    if row.state == "unknown":
        return row.error or "The submit's outcome is unknown."
    said = row.error or f"The job ended {row.state}."
    if row.state == "canceled" and row.canceled_by and row.canceled_by not in said:
        said += f" Cancelled by {row.canceled_by}."
    return said


def _elapsed(row: JobRow) -> float | None:
    from datetime import datetime

    try:
        start = datetime.fromisoformat(row.created_at.replace("Z", "+00:00"))
        end_s = row.finished_at or row.updated_at
        end = datetime.fromisoformat(end_s.replace("Z", "+00:00"))
        return round((end - start).total_seconds(), 2)
    except (ValueError, AttributeError):
        return None


async def as_tool_result(state: Studio, row: JobRow, *, reused: bool = False, note: str = "") -> CallToolResult:
    """Text + structured JobResult + thumbnail + resource links; raise ToolError for a failed job."""
    result = job_result(state, row, reused=reused)
    if row.state in ("failed", "canceled", "unknown", "unsaved"):
        said = f"{result.next_step} {note}".strip()
        raise ToolError(f"Job {row.id} ({row.model_id}) {row.state}: {state.settings.redact(said)}")
    content: list[Any] = [TextContent(text=_summary(result, note))]
    if result.files:
        try:
            preview = await anyio.to_thread.run_sync(_preview, state.project.root, [f.path for f in result.files])
            if preview is not None:
                content.append(ImageContent(data=base64.b64encode(preview[0]).decode(), mime_type=preview[1]))
        except Exception as exc:  # a preview is a nicety; never fail a paid result over it
            log.info("no preview for %s: %s", result.files[0].path, exc)
        for f in result.files:
            where = f"{f.kind} at {f.absolute_path}" + (f"; download: {f.download_url}" if f.download_url else "")
            content.append(ResourceLink(name=f.path.rsplit("/", 1)[-1], uri=f.uri, mime_type=mime_type(f.path),
                                        size=f.bytes, description=where))
    return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))


def _preview(root: Path, paths: list[str]) -> tuple[bytes, str] | None:
    """One file: its thumbnail. Several (num_images, a split group): one labelled sheet of up to 8, so
    every take is seen within the same byte budget."""
    from .. import media

    if len(paths) == 1:
        return media.thumbnail(root / paths[0], max_side=THUMB_SIDE, max_bytes=THUMB_BYTES)
    tiles = [(p.rsplit("/", 1)[-1], root / p) for p in paths[:8]]
    return media.contact_sheet(tiles, side=THUMB_SIDE // 2 if len(tiles) > 4 else 200, max_bytes=THUMB_BYTES)


def _summary(r: JobResult, note: str) -> str:
    head = f"Job {r.job_id} [{r.model}] {r.status}"
    if r.done and r.files:
        paths = ", ".join(f.path for f in r.files)
        cost = "no charge (reused)" if r.reused else (
            f"sandbox placeholder, no charge; ~${r.would_cost_usd or 0:.3f} on the real provider" if r.sandbox
            else f"~${(r.cost_usd or 0):.3f}")
        text = f"{head}: {paths} ({cost})."
    else:
        text = f"{head}. {r.next_step}"
    if r.warnings:
        text += " Warnings: " + " ".join(r.warnings)
    return f"{text} {note}".strip()


async def follow(ctx: Context[Any, Any], started: Started, wait_s: float | None) -> JobRow:
    """Wait for a started job up to wait_s (default from settings), sending MCP progress meanwhile."""
    state = state_of(ctx)
    last = [0.0]

    async def on_progress(event: Progress) -> None:
        value = max(last[0] + 0.001, round(event.elapsed_s, 3))  # progress must only grow
        last[0] = value
        try:
            await ctx.report_progress(value, None, f"{event.job_id}: {event.message} ({event.elapsed_s:.0f} s)")
        except Exception as exc:  # a failed notification must never abort a paid job's call
            log.debug("progress notification failed: %s", exc)

    timeout = state.settings.wait_s if wait_s is None else wait_s
    return await state.runner.wait(started.row.id, timeout, on_progress)
