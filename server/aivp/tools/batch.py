"""batch_generate: many generate_image / edit_image / generate_video calls as one run (domain.batch)."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult, TextContent
from pydantic import BaseModel, ConfigDict, Field, ValidationError, validate_call

from ..domain.batch import Item, ItemResult, Run, invalid, result_of, start_and_follow, unfinished
from ..domain.calls import CALLS
from ..domain.prepare import Call, prepare_call
from ..domain.studio import Studio
from ..errors import AivpError
from .common import boundary, progress_reporter, state_of
from .consent import ConfirmSpend, consent, of_items
from .generate import PAID

# ---------------------------------------------------------------- batch_generate

class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelled field is refused, not dropped
    label: str = Field(min_length=1, description="Results carry it.")
    tool: Literal["generate_image", "edit_image", "generate_video"] = Field(default="generate_image", description="Whose arguments args holds.")
    args: dict[str, Any] = Field(description="The tool's arguments (not wait_s, dry_run).")


class BatchResult(BaseModel):
    items: list[ItemResult]
    done: bool
    estimate_usd: float = Field(description="Sum of the estimates of the items that were started")
    cost_usd: float = Field(description="Charged so far (reused results cost nothing)")
    next_step: str


async def batch_item(state: Studio, item: BatchItem) -> Item:
    """Check one item now (arguments and their types, model, values, inputs); a bad item fails alone."""
    fn = CALLS[item.tool]
    known = ", ".join(sorted(inspect.signature(fn).parameters))
    try:
        call: Call = validate_call(fn)(**item.args)
        req, why = await prepare_call(state, call)
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
        items: Annotated[list[BatchItem], Field(min_length=1, max_length=100, description="{label, tool, args}")],
        ctx: Context[Any, Any],
        concurrency: Annotated[int, Field(ge=1, le=16, description="Jobs at once.")] = 4,
        wait_s: Annotated[float | None, Field(ge=0, le=600, description="Default 45, then job ids.")] = None,
        confirm_spend_usd: ConfirmSpend = None,
    ) -> Annotated[CallToolResult, BatchResult] | InputRequiredResult:
        """Run many generate_image / edit_image / generate_video calls in parallel. Each item is checked first and
        fails alone; each runs as an ordinary job (idempotent, budgeted, recorded). Calling again with the same
        items collects unfinished ones without paying twice."""
        state = state_of(ctx)
        labels = [i.label for i in items]
        if len(set(labels)) != len(labels):
            from ..errors import InvalidParameterError

            raise InvalidParameterError(f"Labels must be unique; repeated: {sorted({x for x in labels if labels.count(x) > 1})}.")
        built = [await batch_item(state, i) for i in items]
        _refuse_twins(built)
        spend = of_items(built, f"a batch of {len(items)} items")
        if (ask := await consent(ctx, state, spend, confirm_spend_usd)) is not None:
            return ask
        run = Run([built], limit=concurrency)
        await start_and_follow(state, run, wait_s, progress_reporter(ctx))
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
        if any(r.sandbox for r in results):
            text += " Sandbox run: the files are placeholders and nothing was charged."
        return CallToolResult(content=[TextContent(text=text)], structured_content=out.model_dump(mode="json"))
