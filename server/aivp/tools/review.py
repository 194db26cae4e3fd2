"""The review page's MCP side: its ui:// resources (an MCP App), mark_clip, and what the page reads
(aivp://review/shots, and images under a byte budget: aivp://thumb/… and aivp://preview/…).
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import anyio
from mcp.server.apps import Apps, ResourceCsp
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..domain import candidates as cands
from ..domain.clips import mark_clip as mark
from ..errors import AivpError
from ..pipeline.review import review_shots
from ..project import Project
from ..review.page import page_html
from .common import boundary, state_of
from .ui import MEDIA_DOMAINS, VIEWS, media_url, ui_uri

THUMB = (480, 48_000)  # side, bytes: grid, board and posters
PREVIEW = (1600, 240_000)  # the lightbox
MARK = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def apps() -> Apps:
    """The review page as three ui:// resources (one per first view), for MCPServer(extensions=[...])."""
    out = Apps()
    titles = {"candidates": "Keyframe candidates", "clips": "Clips", "board": "Storyboard board"}
    for view in VIEWS:
        out.add_html_resource(ui_uri(view), page_html(view, "bridge"), title=f"aivp review: {titles[view]}",
                              description="Look at, select, delete and regenerate keyframes; review clips; follow the storyboard",
                              csp=ResourceCsp(resource_domains=list(MEDIA_DOMAINS)), prefers_border=True)
    return out


class MarkResult(BaseModel):
    shot: int
    clip: str
    status: str = Field(description="failed or ok")
    notes: list[str]


def _jpeg(project: Project, raw: str, side: int, budget: int) -> bytes:
    """A project image (or a clip's frame) as a JPEG of at most `side` px and `budget` bytes."""
    from PIL import Image

    from .. import media

    try:
        path = project.input_path(raw)
        data, mime = media.thumbnail(path, max_side=side, max_bytes=budget)
    except AivpError as exc:
        raise ResourceError(str(exc)) from None
    if mime == "image/jpeg":
        return data
    with Image.open(io.BytesIO(data)) as im:  # a WebP fitted better; the resource promises JPEG
        image = im.convert("RGB")
    while True:
        for quality in (70, 50, 30):
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=quality)
            if buf.tell() <= budget or max(image.size) <= 64:
                return buf.getvalue()
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)))


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Mark a clip failed or ok", annotations=MARK)
    @boundary
    async def mark_clip(
        shot: Annotated[int | str, Field(description="3, shot-03 or 1.2")],
        status: Annotated[Literal["failed", "ok"], Field(description="failed: needs a redo; ok: clears it.")],
        ctx: Context[Any, Any],
        note: Annotated[str | None, Field(description="What is wrong.")] = None,
    ) -> Annotated[CallToolResult, MarkResult]:
        """Record a verdict on a shot's clip in video/plan.md after looking at it. A failed clip shows in
        run_storyboard(mode='status'); run_storyboard(shots=[N], stages=['clips'], redo=[N]) remakes it."""
        state = state_of(ctx)
        number = cands.find_shot(state, shot, need_storyboard=False).number
        clip, notes = mark(state.project, number, status, note)
        out = MarkResult(shot=number, clip=clip, status=status, notes=notes)
        return CallToolResult(content=[TextContent(text=" ".join(notes))], structured_content=out.model_dump(mode="json"))

    @mcp.resource("aivp://review/{name}", mime_type="application/json",
                  description="aivp://review/shots: every shot for review: storyboard text, keyframes, candidate "
                              "count, clip (poster, duration, model, cost, failed mark)")
    async def shots(name: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        if name != "shots":
            raise ResourceNotFoundError("The review data is aivp://review/shots.")
        data = await anyio.to_thread.run_sync(review_shots, state_of(ctx))
        for s in data["shots"]:
            if s["clip"]:
                s["clip"]["url"] = media_url(s["clip"]["url"])  # only what the page may load inside a host
        return data

    @mcp.resource("aivp://thumb/{+path}", mime_type="image/jpeg",
                  description=f"A project image or a clip's frame as a JPEG (at most {THUMB[0]} px, {THUMB[1] // 1000} KB)")
    async def thumb(path: str, ctx: Context[Any, Any]) -> bytes:
        return await anyio.to_thread.run_sync(_jpeg, state_of(ctx).project, path, *THUMB)

    @mcp.resource("aivp://preview/{+path}", mime_type="image/jpeg",
                  description=f"A project image as a larger JPEG (at most {PREVIEW[0]} px, {PREVIEW[1] // 1000} KB)")
    async def preview(path: str, ctx: Context[Any, Any]) -> bytes:
        return await anyio.to_thread.run_sync(_jpeg, state_of(ctx).project, path, *PREVIEW)

