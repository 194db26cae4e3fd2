"""MCP resources and prompts: the skills and references, the catalog, jobs, project files and plans."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.resources import (BinaryResource, FileResource, FunctionResource, Resource,
                                            ResourceTemplate, TextResource)
from mcp.types import InputRequiredResult
from pydantic import Field

from .. import layout
from ..errors import AivpError
from ..http.links import mime_type
from ..settings import Settings
from .common import download_url, job_result, state_of
from .review import PREVIEW, THUMB

# What aivp://files/ returns whole. A host puts a resource read into the model's context and stops at
# about 150k characters (Claude: ~150k per result); a blob travels as base64 (4/3 of its bytes) inside
# JSON. 100 KB of media is ~133k characters, 100,000 characters of text at most ~110k once JSON
# escapes its quotes and line breaks. A keyframe of 160 KB returned 215k characters; a 1 MB limit would
# still have let it through. Anything larger comes back as a short text naming its size, type and the
# ways to get it: a preview resource, the HTTP download link, the path on the server's machine.
BLOB_LIMIT = 100_000  # bytes
TEXT_LIMIT = 100_000  # characters
_TEXTUAL = ("application/json", "application/xml", "application/toml", "application/yaml", "application/x-yaml",
            "application/x-subrip", "application/javascript")


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
        found.append(("aivp://skill", root / "SKILL.md", "Read first: the tool and model for each task with prices, long "
                      "jobs, paying once, spend consent, the review view, the folder convention"))
    for skill in sorted((root / "skills").glob("*/SKILL.md")):
        found.append((f"aivp://skills/{skill.parent.name}", skill, _skill_description(skill)))
    for ref in sorted((root / "references").glob("*.md")):
        found.append((f"aivp://references/{ref.stem}", ref, _reference_description(ref)))
    return found


def _skill_description(skill: Path) -> str:
    """What the skill's front matter says it covers (before its "Use it when ...")."""
    with skill.open(encoding="utf-8") as fh:
        said = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("description:")), "")
    return f"Skill: {said.split(' Use it')[0]}" if said else f"Skill: {skill.parent.name}"


def _reference_description(ref: Path) -> str:
    """The generated model files say what they hold; the others are named by their title line."""
    from ..catalog.docs import INDEX, PARTS

    if ref.name == INDEX:
        return "Every curated model in one line (task, price, tier), and which models-<kind> file has its card"
    for part in PARTS:
        if ref.name == part.file:
            return f"Model cards: {part.about}"
    with ref.open(encoding="utf-8") as fh:
        title = next((line[2:].strip() for line in fh if line.startswith("# ")), ref.stem)
    return f"Reference: {title}"


@dataclass(frozen=True)
class Served:
    """What aivp://files/<path> returns: the file (text or bytes) or, past the limits, a note about it."""

    content: str | bytes
    mime: str
    meta: dict[str, Any] | None = None


def _textual(mime: str) -> bool:
    essence = mime.split(";")[0].strip().lower()
    return essence.startswith("text/") or essence.endswith(("+json", "+xml")) or essence in _TEXTUAL


def serve_file(settings: Settings, root: Path, rel: str, path: Path) -> Served:
    """A project file as a resource: text as text, media as a blob, anything too large as a note."""
    mime = mime_type(rel)
    size = path.stat().st_size
    textual = _textual(mime)
    if (textual or mime == "application/octet-stream") and size <= 4 * TEXT_LIMIT:
        data = path.read_bytes()  # no UTF-8 text of this many bytes holds more than TEXT_LIMIT * 4 characters
        text = _decoded(data)
        if text is not None:
            shown = mime if textual else "text/plain"
            if len(text) <= TEXT_LIMIT:
                return Served(text, shown)
            return _too_large(settings, root, rel, path, size, shown, len(text))
        if size <= BLOB_LIMIT:  # not UTF-8: the bytes, as they are
            return Served(data, mime)
    if textual or size > BLOB_LIMIT:
        return _too_large(settings, root, rel, path, size, mime, None)
    return Served(path.read_bytes(), mime)


def _decoded(data: bytes) -> str | None:
    """The text of a UTF-8 file (a byte-order mark dropped), or None for anything that is not text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def _too_large(settings: Settings, root: Path, rel: str, path: Path, size: int, mime: str,
               chars: int | None) -> Served:
    from urllib.parse import quote

    quoted = quote(rel)
    shape = ""
    if mime.startswith("image/"):
        try:
            from ..media import image_size

            shape = "{}x{}, ".format(*image_size(path))
        except Exception:  # a broken or unusual image still gets its note, without a size
            shape = ""
    amount = f"{chars:,} characters, " if chars is not None else ""
    lines = [f"{rel} ({mime}, {shape}{amount}{size:,} bytes) is too large to return here: aivp://files/ returns "
             f"media up to {BLOB_LIMIT // 1000} KB and text up to {TEXT_LIMIT:,} characters, so that a read stays "
             "within what hosts accept (Claude: about 150k characters)."]
    if mime.startswith(("image/", "video/")):
        what = "the image" if mime.startswith("image/") else "a frame of the clip"
        lines.append(f"To look at it: aivp://thumb/{quoted} ({what} as a JPEG of at most {THUMB[0]} px and "
                     f"{THUMB[1] // 1000} KB), or aivp://preview/{quoted} (up to {PREVIEW[0]} px, {PREVIEW[1] // 1000} "
                     "KB, for a closer look).")
        if mime.startswith("video/"):
            poster = layout.poster_path(rel)
            if (root / poster).is_file():
                lines.append(f"Its poster frame: aivp://files/{quote(poster)}.")
    link = download_url(settings, rel)
    if link:
        lines.append(f"To download it (valid 1 h, no other auth needed): {link}")
    lines.append(f"On the server's machine it is {path}; `aivp review --project {root}` shows the project's images "
                 "and clips in a browser.")
    meta = {"aivp": {"too_large": True, "mime_type": mime, "bytes": size, "download_url": link}}
    return Served("\n".join(lines) + "\n", "text/plain", meta)


class ProjectFiles(ResourceTemplate):
    """aivp://files/{+path}: each file is read with its own MIME type (an SDK template has one type for all),
    text as text, media as a blob, a file over the limits as a note (`serve_file`)."""

    async def create_resource(self, uri: str, params: dict[str, Any],
                              context: Context[Any, Any]) -> Resource | InputRequiredResult:
        made = await super().create_resource(uri, params, context)
        if not isinstance(made, FunctionResource):
            return made
        served = made.fn()  # the template's function already ran; this only returns its result
        if not isinstance(served, Served):
            return made
        common: dict[str, Any] = {"uri": uri, "name": made.name, "description": made.description,
                                  "mime_type": served.mime, "meta": served.meta}
        if isinstance(served.content, str):
            return TextResource(text=served.content, **common)
        return BinaryResource(data=served.content, **common)


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

    def project_file(path: str, ctx: Context[Any, Any]) -> Served:
        """A file of the project (read through the containment check)"""
        state = state_of(ctx)
        try:
            resolved = state.project.input_path(path)
        except AivpError as exc:
            raise ResourceError(str(exc)) from None
        return serve_file(state.settings, state.project.root, path, resolved)

    files = ProjectFiles.from_function(
        project_file, "aivp://files/{+path}", mime_type="application/octet-stream",
        description=f"A file of the project with its MIME type: text as text, media as a blob; over {BLOB_LIMIT // 1000} KB "
                    f"(media) or {TEXT_LIMIT // 1000}k characters (text) a note with its size and how to get it instead")
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
