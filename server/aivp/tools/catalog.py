"""search_models and upload_file."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..catalog.schema import TASKS
from ..errors import InputFileError
from ..inputs import resolve_input
from ..jobs.uploads import upload
from .catalog_text import search_text
from .common import boundary, state_of

TaskName = Literal["t2i", "i2i", "edit", "inpaint", "upscale", "t2v", "i2v", "first-last-frame",
                   "reference-to-video", "v2v", "multi-shot"]
assert set(get_args(TaskName)) == set(TASKS)


class ModelSearch(BaseModel):
    models: list[dict[str, Any]] = Field(description="Curated models that match, best first, with price and a typical call's cost")
    live: list[dict[str, Any]] = Field(default=[], description="More endpoints from fal's live model list (source: live): id, category, unit price, one line")
    next_cursor: str | None = Field(default=None, description="Pass as cursor for the next page of live results")
    note: str | None = Field(default=None, description="Why live results are missing or old, when they are")
    detail: dict[str, Any] | None = Field(default=None, description="Card of the model asked for: endpoints, parameters (types, values, ranges, defaults, required), price")


class Uploaded(BaseModel):
    url: str = Field(description="Public URL of the file on the provider's CDN")
    path: str
    sha256: str
    bytes: int
    mime: str
    cached: bool = Field(description="True when the same bytes were uploaded before and that URL was reused")


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Search models", annotations=ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True))
    @boundary
    async def search_models(
        ctx: Context[Any, Any],
        task: Annotated[TaskName | None, Field()] = None,
        query: Annotated[str | None, Field(description="Words, e.g. kling")] = None,
        capabilities: Annotated[list[str] | None, Field(description="e.g. native-audio, end-frame, text-rendering, multi-reference, 4k, lora")] = None,
        max_price_usd: Annotated[float | None, Field(ge=0, description="Cap on a typical call.")] = None,
        min_consistency: Annotated[Literal["none", "weak", "medium", "strong"] | None, Field(description="Least character consistency.")] = None,
        tier: Annotated[Literal["fast", "standard", "premium"] | None, Field()] = None,
        prefer: Annotated[Literal["balanced", "quality", "price", "speed"], Field()] = "balanced",
        model: Annotated[str | None, Field(description="Read this model's card.")] = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 8,
        live: Annotated[bool, Field(description="Add fal's live list.")] = True,
        cursor: Annotated[str | None, Field(description="next_cursor: more live results.")] = None,
    ) -> Annotated[CallToolResult, ModelSearch]:
        """Find a model for a task, budget and capability, or read one model's card (every native parameter with
        its valid values, for options). Curated models first, then fal's live list, paged."""
        from ..catalog.search import curated_endpoints, detail, search
        from ..catalog.livemodel import live_card
        from ..catalog.livesearch import search as live_search
        from ..domain.live import ensure, is_curated, live_for

        state = state_of(ctx)
        available = state.providers or {"fal"}
        lists = not model or bool(task or query or capabilities or max_price_usd is not None or min_consistency or tier)
        found = [] if cursor or not lists else search(task=task, query=query, capabilities=capabilities,
                                         max_price_usd=max_price_usd, min_consistency=min_consistency, tier=tier,
                                         prefer=prefer, limit=limit, available=available)
        out = ModelSearch(models=found)
        catalog_live = live_for(state) if lists and live and not capabilities and not min_consistency and not tier \
            else None
        if catalog_live is not None:
            rows, out.next_cursor, out.note = await live_search(catalog_live, query=query, task=task, limit=limit,
                                                                cursor=cursor, skip=curated_endpoints())
            out.live = [r for r in rows if max_price_usd is None or r.get("unit") != "image"
                        or r.get("unit_price", 0) <= max_price_usd]
        if model:
            if is_curated(model):
                out.detail = detail(model, available)
            else:
                ep = await ensure(state, model)
                if ep is None:
                    detail(model, available)  # raises the unknown-model error naming the closest catalog models
                else:
                    out.detail = live_card(ep)
        text = search_text(out.models, out.live, out.next_cursor, out.note, out.detail)
        return CallToolResult(content=[TextContent(text=text)], structured_content=out.model_dump(mode="json"))

    @mcp.tool(title="Upload file", annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True))
    @boundary
    async def upload_file(
        path: Annotated[str, Field(min_length=1, description="Project path.")],
        ctx: Context[Any, Any],
        fresh: Annotated[bool, Field(description="Upload again (a dead link).")] = False,
    ) -> Uploaded:
        """Put a project file on fal's CDN and return its public URL. Generation tools upload by themselves; use
        this to hand a URL elsewhere. The same bytes upload once."""
        state = state_of(ctx)
        ref = resolve_input(state.project, path, expect="any", max_bytes=state.settings.max_upload_bytes, what="file")
        if ref.kind != "path" or ref.path is None or ref.sha256 is None:
            raise InputFileError("upload_file takes a project path; URLs and data: URIs are already remote.")
        url, cached = await upload(state.ledger, state.runner.providers["fal"], ref, fresh=fresh)
        return Uploaded(url=url, path=ref.rel or path, sha256=ref.sha256, bytes=ref.size or 0,
                        mime=ref.mime or "application/octet-stream", cached=bool(cached))
