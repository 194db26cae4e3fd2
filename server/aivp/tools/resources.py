"""MCP resources and prompts: the skills and references, the catalog, jobs, project files and plans."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.resources import FileResource, Resource, ResourceTemplate
from mcp.types import InputRequiredResult
from pydantic import Field

from ..errors import AivpError
from ..http.links import mime_type
from .common import job_result, state_of


@cache
def docs_root() -> Path:
    """Where SKILL.md, skills/ and references/ live: inside the wheel, or the source checkout."""
    packaged = Path(__file__).parent.parent / "_docs"
    if (packaged / "SKILL.md").is_file():
        return packaged
    return Path(__file__).resolve().parents[3]


def doc_files() -> list[tuple[str, Path, str]]:
    """(uri, path, description) of every document served as a resource."""
    root = docs_root()
    found: list[tuple[str, Path, str]] = []
    if (root / "SKILL.md").is_file():
        found.append(("aivp://skill", root / "SKILL.md", "The aivp skill: which tool and model to use when, the folder convention"))
    for skill in sorted((root / "skills").glob("*/SKILL.md")):
        found.append((f"aivp://skills/{skill.parent.name}", skill, f"Skill: {skill.parent.name}"))
    for ref in sorted((root / "references").glob("*.md")):
        found.append((f"aivp://references/{ref.stem}", ref, f"Reference: {ref.stem}"))
    return found


class ProjectFiles(ResourceTemplate):
    """aivp://files/{+path}: each file is read with its own MIME type (an SDK template has one type for all)."""

    async def create_resource(self, uri: str, params: dict[str, Any],
                              context: Context[Any, Any]) -> Resource | InputRequiredResult:
        made = await super().create_resource(uri, params, context)
        if isinstance(made, Resource):
            made = made.model_copy(update={"mime_type": mime_type(str(params.get("path", "")))})
        return made


def register(mcp: MCPServer[Any]) -> None:
    for uri, path, description in doc_files():
        mcp.add_resource(FileResource(uri=uri, path=path.resolve(), name=uri.removeprefix("aivp://"),
                                      description=description, mime_type="text/markdown"))

    @mcp.resource("aivp://models", mime_type="application/json", description="Every model: tasks, price, tier, tags")
    def models() -> dict[str, Any]:
        from ..catalog import catalog
        from ..catalog.search import summary

        return {"models": [summary(m) for m in catalog().models]}

    @mcp.resource("aivp://models/{+model_id}", mime_type="application/json",
                  description="One model's card (catalog id, fal endpoint id or Replicate owner/name): parameters, ranges, price")
    async def model_card(model_id: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        from ..catalog.search import detail
        from ..catalog.livemodel import live_card
        from ..domain.live import ensure, is_curated

        try:
            if is_curated(model_id):
                return detail(model_id)
            ep = await ensure(state_of(ctx), model_id)
            return live_card(ep) if ep is not None else detail(model_id)
        except AivpError as exc:
            raise ResourceNotFoundError(str(exc)) from None

    @mcp.resource("aivp://jobs/{job_id}", mime_type="application/json", description="A job's state and files")
    def job(job_id: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        state = state_of(ctx)
        row = state.ledger.get(job_id)
        if row is None:
            raise ResourceNotFoundError(f"No job {job_id} in this project.")
        return job_result(state, row).model_dump(mode="json")

    def project_file(path: str, ctx: Context[Any, Any]) -> bytes:
        """A file of the project (read through the containment check)"""
        state = state_of(ctx)
        try:
            resolved = state.project.input_path(path)
        except AivpError as exc:
            raise ResourceError(str(exc)) from None
        return resolved.read_bytes()

    files = ProjectFiles.from_function(project_file, "aivp://files/{+path}", mime_type="application/octet-stream",
                                       description="A file of the project (read through the containment check)")
    # The SDK has no public way to add a template object; its manager keeps them in this dict.
    mcp._resource_manager._templates[files.uri_template] = files

    @mcp.resource("aivp://plan/{kind}", mime_type="text/markdown", description="image/plan.md or video/plan.md")
    def plan(kind: str, ctx: Context[Any, Any]) -> str:
        if kind not in ("image", "video"):
            raise ResourceNotFoundError("Use aivp://plan/image or aivp://plan/video.")
        path = state_of(ctx).project.root / kind / "plan.md"
        return path.read_text(encoding="utf-8") if path.is_file() else f"# No {kind}/plan.md yet\n"

    @mcp.prompt(title="Animate a keyframe")
    def animate_keyframe(
        keyframe: Annotated[str, Field(description="The image to animate, e.g. image/frames/shot-01-ff.png")],
        motion: Annotated[str, Field(description="What moves and how the camera moves, in a sentence or two")],
        duration: Annotated[str, Field(description="Seconds, e.g. 5")] = "5",
    ) -> str:
        """Turn a keyframe into a clip with the right model and a well-formed motion prompt."""
        return (
            f"Animate the keyframe `{keyframe}` into a {duration}-second clip.\n\n"
            f"Motion wanted: {motion}\n\n"
            "Steps:\n"
            "1. Look at the keyframe (read it via its aivp://files/ URI) and write a motion prompt in the order "
            "scene → action → dialogue in quotes → camera → sound.\n"
            "2. Unless I named a model, call generate_video with image set to the keyframe, the duration, and no "
            "model (aivp picks Seedance 2.0: native audio, start and end frames). Use Kling 3.0 Pro or Veo 3.1 only "
            "for hero shots, and say what it will cost first (search_models lists prices).\n"
            f"3. Save it under video/clips/ (output=video/clips/<name>.mp4). If the call returns a job_id, "
            "collect it with queue_status(job_id, wait_s=30).\n"
            "4. Report the file, its duration check and the cost."
        )

    @mcp.prompt(title="Character sheet")
    def character_sheet(
        name: Annotated[str, Field(description="The character's name, e.g. Mara")],
        description: Annotated[str, Field(description="Looks and outfit, word for word as every later prompt will say it")],
        style: Annotated[str, Field(description="Visual style, e.g. cinematic, photorealistic")] = "cinematic, photorealistic",
    ) -> str:
        """Make consistent front, side and back views of a character for later shots."""
        slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") or "character"
        return (
            f"Make a character sheet for {name}: {description}. Style: {style}.\n\n"
            f"1. Front view first: generate_image with a full-body, neutral-pose, plain-background prompt that "
            f"starts with the exact description above; output=image/characters/{slug}-front.png, aspect_ratio 3:4.\n"
            f"2. Then side and back views with references=[image/characters/{slug}-front.png], prompts saying "
            f"'the same character, side view' / 'back view', outputs image/characters/{slug}-side.png and "
            f"-back.png.\n"
            "3. Keep the description word for word in every prompt: it is the anchor that keeps the character "
            "consistent in every later keyframe.\n"
            "4. Show me the three files."
        )

    @mcp.prompt(title="Storyboard to clips")
    def storyboard_to_clips(
        multi_shot: Annotated[str, Field(description="yes: dialogue scenes as Kling multi-shot calls; no (default)")] = "no",
        shots: Annotated[str, Field(description="Only these shots, e.g. 1, 3 (default: all)")] = "",
    ) -> str:
        """Turn the project's storyboard into portraits, keyframes and clips: plan and show the cost, then run and report.

        multi_shot: "yes" renders dialogue scenes as Kling multi-shot calls; shots: e.g. "1, 3" (default: all)."""
        wanted = [s.strip() for s in shots.replace(";", ",").split(",") if s.strip()]
        grouped = multi_shot.strip().lower() in ("yes", "y", "true", "1", "on")
        args = (", multi_shot=true" if grouped else "") + (f", shots={wanted!r}" if wanted else "")
        scope = f"shots {', '.join(wanted)} (and what they need)" if wanted else "every shot"
        return (
            f"Turn the storyboard in storyboard/storyboard-final/ into clips for {scope}"
            f"{', with dialogue scenes as Kling multi-shot calls' if grouped else ''}.\n\n"
            f"1. Call run_storyboard(mode='plan'{args}). It spends nothing. Show me its steps (portraits, location "
            "plates, keyframes, clips, multi-shot groups) with model, mode and estimate, the total estimate_usd, and "
            "every entry of `problems` as file:line: message.\n"
            "2. Stop there and ask me to go ahead, naming the total. If problems or invalid steps matter, say what "
            "to fix in which storyboard file first.\n"
            f"3. When I agree, call run_storyboard(mode='run'{args}). It returns after wait_s while the run goes on "
            "in the server; follow it with run_storyboard(mode='status') about every 30 s until the status is done, "
            "partial or failed.\n"
            "4. Report each shot's status and clip (video/clips/), the errors of failed or blocked shots and how to "
            "fix them, and what was spent (queue_status() gives spent_usd). A second run only makes what is "
            "missing or failed; nothing done is paid twice."
        )
