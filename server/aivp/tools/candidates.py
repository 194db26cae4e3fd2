"""generate_candidates, list_candidates, manage_candidates: keyframe takes of a shot (domain.candidates).

Three tools so each one's annotations are true: generating pays and reaches the provider, listing
only reads, and selecting, deleting or uploading changes project files but calls no provider.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ImageContent, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..domain import candidates as cands
from ..domain.batch import ItemResult, Run, result_of, start_and_follow, unfinished
from ..domain.candidates import Candidate
from ..domain.studio import Studio
from ..project import Project
from .common import THUMB_BYTES, boundary, progress_reporter, state_of
from .consent import ConfirmSpend, consent, of_items
from .generate import PAID, DryRun, Model, Variations, WaitS
from .ui import review_line, ui_meta

LIST = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
MANAGE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
Shot = Annotated[int | str, Field(description="3, shot-03 or 1.2")]


class CandidatesResult(BaseModel):
    shot: int
    candidates: list[Candidate]
    frames: dict[str, str] = Field(description="first/last -> the representative keyframe in image/frames/, where one exists")
    jobs: list[ItemResult] = Field(default=[], description="generate: the jobs; list: jobs still making candidates")
    estimate_usd: float | None = None
    notes: list[str] = []
    next_step: str


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Generate keyframe candidates", annotations=PAID, meta=ui_meta("candidates"))
    @boundary
    async def generate_candidates(
        shot: Shot,
        ctx: Context[Any, Any],
        frame: Annotated[Literal["first", "last"], Field(description="Which keyframe.")] = "first",
        count: Annotated[int, Field(ge=1, le=4, description="Each is billed.")] = 4,
        prompt: Annotated[str | None, Field(description="Default: the storyboard's prompt and references.")] = None,
        references: Annotated[list[str] | None, Field(description="Up to 5 extra images.")] = None,
        variations: Variations = None,
        model: Model = None,
        wait_s: WaitS = None,
        dry_run: DryRun = False,
        confirm_spend_usd: ConfirmSpend = None,
    ) -> Annotated[CallToolResult, CandidatesResult] | InputRequiredResult:
        """Generate 1-4 takes of a shot's first or last keyframe into image/candidates/shot-NN/, shown side by
        side. Earlier takes are kept; manage_candidates(action='select') makes one the keyframe."""
        state = state_of(ctx)
        ref = cands.find_shot(state, shot, need_storyboard=prompt is None)
        gen = cands.plan_generation(state, ref, frame, count, prompt, references, variations, model, dry_run)
        if dry_run:
            for item in gen.items:
                item.status = "estimate"
            return await _answer(state, ref.number, notes=gen.notes, jobs=[result_of(state, i) for i in gen.items],
                                 estimate=gen.estimate_usd, action="dry_run")
        what = f"{len(gen.items)} {frame} keyframe candidate(s) of shot {ref.number}"
        if (ask := await consent(ctx, state, of_items(gen.items, what), confirm_spend_usd)) is not None:
            return ask
        run = Run([gen.items], limit=len(gen.items))
        await start_and_follow(state, run, wait_s, progress_reporter(ctx))
        return await _answer(state, ref.number, notes=gen.notes, jobs=[result_of(state, i) for i in gen.items],
                             action="generate", estimate=gen.estimate_usd, frame=frame, review=review_line(ctx, state.project.root))

    @mcp.tool(title="List keyframe candidates", annotations=LIST, meta=ui_meta("candidates"))
    @boundary
    async def list_candidates(shot: Shot, ctx: Context[Any, Any]) -> Annotated[CallToolResult, CandidatesResult]:
        """A shot's keyframe candidates (selected, model, cost), its keyframes, jobs still running and a preview sheet."""
        state = state_of(ctx)
        number = cands.find_shot(state, shot, need_storyboard=False).number
        return await _answer(state, number, notes=[], jobs=cands.in_flight(state, number), action="list",
                             review=review_line(ctx, state.project.root))

    @mcp.tool(title="Select, delete or upload a candidate", annotations=MANAGE)
    @boundary
    async def manage_candidates(
        shot: Shot,
        action: Annotated[Literal["select", "delete", "upload"], Field(description="select copies it to image/frames/shot-NN-ff|lf.png.")],
        ctx: Context[Any, Any],
        candidate: Annotated[str | None, Field(description="select/delete: e.g. ff-c2.png")] = None,
        file: Annotated[str | None, Field(description="upload: a project image.")] = None,
        frame: Annotated[Literal["first", "last"], Field(description="upload: for which keyframe.")] = "first",
    ) -> Annotated[CallToolResult, CandidatesResult]:
        """Select a shot's keyframe among its candidates (generate_video and run_storyboard use it), delete a take
        (not the selected one), or upload your own. Clips made from an earlier keyframe stay."""
        state = state_of(ctx)
        number = cands.find_shot(state, shot, need_storyboard=False).number
        if action == "select":
            notes = cands.select(state, number, cands.named(state.project, number, candidate))
        elif action == "delete":
            notes = cands.delete(state, number, cands.named(state.project, number, candidate))
        else:
            notes = cands.upload(state, number, frame, file)
        return await _answer(state, number, notes=notes, jobs=cands.in_flight(state, number), action=action)


# ---------------------------------------------------------------- the answer

async def _answer(state: Studio, number: int, *, notes: list[str], jobs: list[ItemResult], action: str,
                  estimate: float | None = None, frame: str | None = None, review: str = "") -> CallToolResult:
    candidates, frames = cands.listing(state, number)
    going = unfinished(jobs)
    failed = [j for j in jobs if j.status in ("failed", "invalid", "canceled", "unknown")]
    example = next((c.file.rsplit("/", 1)[-1] for c in reversed(candidates) if not c.selected), "ff-c1.png")
    if action == "dry_run":
        nxt = "Nothing was sent or charged. Call again without dry_run to generate."
    elif going:
        nxt = (f"{len(going)} job(s) still running in the server. Call list_candidates(shot={number}) "
               "in ~20 s (generating again would make and pay for new candidates), or queue_status(job_id).")
    elif failed:
        nxt = f"{failed[0].label}: {failed[0].error}"
    elif action == "select":
        args = ", ".join(f"image='{f}'" if k == "first" else f"end_image='{f}'" for k, f in frames.items())
        nxt = f"The keyframe is in image/frames/; generate_video({args}, ...) animates it."
    elif candidates:
        nxt = (f"Compare them (the preview shows them), then manage_candidates(shot={number}, action='select', "
               f"candidate='{example}'). generate_candidates adds more; manage_candidates(action='upload') adds your own.")
    else:
        nxt = f"No candidates yet: generate_candidates(shot={number})."
    out = CandidatesResult(shot=number, candidates=candidates, frames=frames, jobs=jobs,
                           estimate_usd=round(estimate, 4) if estimate is not None else None, notes=notes, next_step=nxt)
    chosen = ", ".join(f"{c.frame}: {c.file}" for c in candidates if c.selected) or "none selected"
    text = f"Shot {number}: {len(candidates)} candidate(s) ({chosen}). {' '.join(notes)} {nxt}".replace("  ", " ")
    if review and candidates:
        text += f"\n{review}"
    content: list[Any] = [TextContent(text=text)]
    shown = [c.file for c in candidates if frame is None or c.frame == frame]
    if shown and action in ("generate", "list", "upload"):
        skipped: list[str] = []
        preview = await anyio.to_thread.run_sync(_contact_sheet, state.project, shown[-8:], skipped)
        if preview is not None:
            content.append(preview)
        if skipped:
            content[0] = TextContent(text=f"{text} Not in the preview: {'; '.join(skipped)}.")
    return CallToolResult(content=content, structured_content=out.model_dump(mode="json"))


def _contact_sheet(project: Project, files: list[str], skipped: list[str]) -> ImageContent | None:
    """The candidates side by side, each labelled with its file name, as one small JPEG. A file that cannot
    be shown (damaged, a decompression bomb, a link out of the project) is left out and named in `skipped`."""
    from ..media import contact_sheet

    tiles = []
    for rel in files:
        try:
            tiles.append((rel.rsplit("/", 1)[-1], project.input_path(rel)))
        except Exception as exc:  # a link out of the project is named, never followed
            skipped.append(f"{rel.rsplit('/', 1)[-1]} cannot be shown ({exc})")
    sheet = contact_sheet(tiles, side=200, max_bytes=THUMB_BYTES, skipped=skipped)
    if sheet is None:
        return None
    return ImageContent(data=base64.b64encode(sheet[0]).decode(), mime_type=sheet[1])
