"""keyframe_candidates: several takes of a shot's keyframe, one chosen as its representative.

Candidates live in image/candidates/shot-NN/ as ff-c<k>.png / lf-c<k>.png (generated), ff-u<k>.png
(uploaded) and ff-p<k>.png (a representative frame that was replaced and was not a candidate), each
with a record in image/log/. Generating more never removes any. Selecting one copies it to
image/frames/shot-NN-ff.png (or -lf), the file every video tool and run_storyboard use, and writes
the choice to image/candidates/shot-NN/selected.json; clips made from an earlier choice stay as
they are.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..errors import InvalidParameterError
from ..jobs import JobRequest
from ..ledger import now_iso
from ..mentions import MAX_EXTRA_REFS
from ..project import Project
from .assets import png_bytes, write_file
from .batch import Item, ItemResult, Run, result_of, start_and_follow, unfinished
from .common import THUMB_BYTES, AppState, boundary, state_of
from .generate import DryRun, Model, Variations, WaitS
from .prepare import Call, prepare

FRAMES = {"first": "ff", "last": "lf"}
KIND_OF = {v: k for k, v in FRAMES.items()}
NAMED = re.compile(r"^(ff|lf)-([cup])(\d+)\.png$")
SOURCE = {"c": "generated", "u": "upload", "p": "previous frame"}
TOOL = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True)


class Candidate(BaseModel):
    file: str
    frame: str
    source: str = Field(description="generated, upload, or previous frame (a replaced representative kept here)")
    selected: bool
    model: str | None = None
    cost_usd: float | None = None


class CandidatesResult(BaseModel):
    shot: int
    candidates: list[Candidate]
    frames: dict[str, str] = Field(description="first/last -> the representative keyframe in image/frames/, where one exists")
    jobs: list[ItemResult] = Field(default=[], description="generate: the jobs; list: jobs still making candidates")
    estimate_usd: float | None = None
    notes: list[str] = []
    next_step: str


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Keyframe candidates", annotations=TOOL)
    @boundary
    async def keyframe_candidates(
        shot: Annotated[int | str, Field(description="Shot number (3), file stem (shot-03) or storyboard id (1.2).")],
        ctx: Context[Any, Any],
        action: Annotated[Literal["generate", "list", "select", "delete", "upload"], Field(description="generate candidates (pays), list them, select one as the representative keyframe, delete one, or upload your own (free).")],
        frame: Annotated[Literal["first", "last"], Field(description="Which keyframe (generate, upload).")] = "first",
        count: Annotated[int, Field(ge=1, le=4, description="generate: how many candidates (each is billed).")] = 4,
        prompt: Annotated[str | None, Field(description="generate: the frame; @Name brings in a character/location. Default: the storyboard's prompt for this frame, with its references.")] = None,
        references: Annotated[list[str] | None, Field(description="generate: up to 5 extra reference images (after @mentioned sheets).")] = None,
        variations: Variations = None,
        model: Model = None,
        candidate: Annotated[str | None, Field(description="select/delete: the candidate file, e.g. ff-c2.png.")] = None,
        file: Annotated[str | None, Field(description="upload: an image inside the project (or an extra root) to add as a candidate.")] = None,
        wait_s: WaitS = None,
        dry_run: DryRun = False,
    ) -> Annotated[CallToolResult, CandidatesResult]:
        """Keyframe takes for a shot: generate 1-4 candidates, compare them (the result shows a preview),
        select the representative keyframe (copied to image/frames/shot-NN-ff.png or -lf.png for
        generate_video and run_storyboard), delete a take, or upload your own.

        Generating again adds candidates and never removes earlier ones. Re-selecting later replaces the
        keyframe; clips made from the earlier one stay. The selected candidate cannot be deleted."""
        state = state_of(ctx)
        number, sb_shot = _shot(state, shot, need_storyboard=action == "generate" and prompt is None)
        if action == "generate":
            return await _generate(ctx, state, number, sb_shot, frame, count, prompt, references, variations, model,
                                   wait_s, dry_run)
        notes: list[str] = []
        if action == "select":
            notes = _select(state, number, _named(state.project, number, candidate))
        elif action == "delete":
            notes = _delete(state, number, _named(state.project, number, candidate))
        elif action == "upload":
            notes = _upload(state, number, frame, file)
        return await _answer(state, number, notes=notes, jobs=_in_flight(state, number), action=action)


# ---------------------------------------------------------------- the shot and its folder

def _folder(number: int) -> str:
    return f"image/candidates/shot-{number:02d}"


def _frame_file(number: int, frame: str) -> str:
    return f"image/frames/shot-{number:02d}-{FRAMES[frame]}.png"


def _shot(state: AppState, shot: int | str, *, need_storyboard: bool) -> tuple[int, Any]:
    text = str(shot).strip().lower().removeprefix("shot").strip(" -_")
    sb = None
    if need_storyboard or not text.isdigit():
        from ..storyboard import load_storyboard

        sb = load_storyboard(state.project.root)
        found = sb.shot(text)
        if found is not None:
            return found.number, (sb, found)
        if not text.isdigit():
            known = ", ".join(f"{s.number} ({s.id})" for s in sb.shots) or "none (no storyboard)"
            raise InvalidParameterError(f"There is no shot {shot!r}; storyboard shots are {known}. Pass a shot number.")
    number = int(text)
    if not 0 < number < 1000:
        raise InvalidParameterError(f"shot must be a number from 1 to 999, not {shot!r}.")
    return number, None


def _taken(state: AppState, number: int, prefix: str, tag: str) -> int:
    """The highest k used by a file, or by a job still making one, for `<prefix>-<tag><k>.png`."""
    folder = state.project.root / _folder(number)
    names = [p.name for p in folder.glob("*.png")] if folder.is_dir() else []
    for row in state.ledger.unfinished():
        names += [t.rsplit("/", 1)[-1] for t in row.spec.get("targets") or [] if t.startswith(_folder(number) + "/")]
    used = [int(m[3]) for n in names if (m := NAMED.match(n)) and m[1] == prefix and m[2] == tag]
    return max(used, default=0)


def _named(project: Project, number: int, candidate: str | None) -> Path:
    """The candidate file a caller named, inside this shot's folder only."""
    if not candidate or not candidate.strip():
        raise InvalidParameterError("Pass candidate, the file to use, e.g. candidate='ff-c2.png' (action='list' shows them).")
    raw = candidate.strip()
    name = raw.rsplit("/", 1)[-1]
    name = name if name.endswith(".png") else f"{name}.png"
    folder = project.output_path(_folder(number))
    if "/" in raw and project.output_path(raw if raw.endswith(".png") else f"{raw}.png").parent != folder:
        raise InvalidParameterError(f"{raw!r} is not a candidate of shot {number} (those are in {_folder(number)}/).")
    path = project.output_path(f"{_folder(number)}/{name}")
    if not NAMED.match(name) or not path.is_file():
        have = ", ".join(sorted(p.name for p in folder.glob("*.png") if NAMED.match(p.name))) if folder.is_dir() else ""
        raise InvalidParameterError(f"Shot {number} has no candidate {name!r}; it has {have or 'none yet'}.")
    return path


def _selection(project: Project, number: int) -> dict[str, Any]:
    path = project.root / _folder(number) / "selected.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record(project: Project, path: Path) -> dict[str, Any]:
    try:
        data = json.loads(project.record_path("image", path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------- generate

async def _generate(ctx: Context[Any, Any], state: AppState, number: int, sb_shot: Any, frame: str, count: int,
                    prompt: str | None, references: list[str] | None, variations: dict[str, str] | None,
                    model: str | None, wait_s: float | None, dry_run: bool) -> CallToolResult:
    notes: list[str] = []
    ratio = None
    if prompt is None:
        prompt, refs, ratio, why = _from_storyboard(state, number, sb_shot, frame)
        notes.append(f"Prompt from the storyboard ({why}).")
        if references is None:
            references = refs[:MAX_EXTRA_REFS]
            if len(refs) > MAX_EXTRA_REFS:
                notes.append(f"Kept the first {MAX_EXTRA_REFS} storyboard references; left out {', '.join(refs[MAX_EXTRA_REFS:])}.")
    prefix = FRAMES[frame]
    start = _taken(state, number, prefix, "c") + 1
    targets = [f"{_folder(number)}/{prefix}-c{start + i}.png" for i in range(count)]
    base = Call("keyframe_candidates", "image", "edit" if references else "t2i", model,
                {"prompt": prompt, "references": references or None, "aspect_ratio": ratio},
                output=targets[0], variations=variations)
    reqs, why = _requests(state, base, targets, dry_run)
    items = [Item(", ".join(t.rsplit("/", 1)[-1] for t in r.targets or []), make=lambda r=r: (r, why),  # type: ignore[misc]
                  model=r.built.model.id, estimate_usd=round(r.estimate.usd, 4)) for r in reqs]
    notes += [w for w in reqs[0].built.warnings if w not in notes]
    notes.append(f"Model: {why}.")
    if dry_run:
        for item in items:
            item.status = "estimate"
        est = sum(i.estimate_usd or 0 for i in items)
        return await _answer(state, number, notes=notes, jobs=[result_of(state, i) for i in items], estimate=est,
                             action="dry_run")
    run = Run([items], limit=len(items))
    await start_and_follow(ctx, run, wait_s)
    return await _answer(state, number, notes=notes, jobs=[result_of(state, i) for i in items], action="generate",
                         estimate=sum(i.estimate_usd or 0 for i in items), frame=frame)


def _from_storyboard(state: AppState, number: int, sb_shot: Any, frame: str) -> tuple[str, list[str], str | None, str]:
    if sb_shot is None:
        raise InvalidParameterError(f"Pass prompt: there is no storyboard shot {number} to take the frame's prompt from.")
    from ..pipeline.plan import Options, Planner

    sb, shot = sb_shot
    spec = shot.frames.get(frame)
    if spec is None:
        raise InvalidParameterError(f"Shot {shot.id} has no {frame} frame in the storyboard; pass prompt to make one anyway.")
    planner = Planner(sb, state.project, Options(shots={number}, stages=()))
    refs, why = planner._frame_refs(shot, frame)
    text = spec.prompt or (shot.first_frame_text if frame == "first" else shot.last_frame_text) or shot.motion_text
    prompt = planner._with_anchors(text or f"Shot {shot.id}", shot, frame)
    ratio = spec.ratio or next((m.aspect_ratio for m in shot.motion.values() if m.aspect_ratio), None)
    return prompt, refs, ratio, why


def _requests(state: AppState, base: Call, targets: list[str], dry_run: bool) -> tuple[list[JobRequest], str]:
    """One job making every candidate when the model takes num_images that high, else one job each
    with its own seed (the same request twice would be the same picture)."""
    probe, why = prepare(state, base, dry_run=dry_run)
    params = probe.built.params
    many = next((p for p in params.values() if p.role == "num_images"), None)
    seed = next((p for p in params.values() if p.role == "seed"), None)
    if len(targets) == 1:
        calls, groups = [base], [targets]
    elif many is not None and (many.max is None or many.max >= len(targets)):
        calls, groups = [replace(base, roles={**base.roles, "num_images": len(targets)})], [targets]
    else:
        top = int(min(seed.max or 2**31 - 1, 2**31 - 1)) if seed is not None else 0
        calls = [replace(base, output=t, roles={**base.roles, "seed": random.randint(1, top) if seed else None})
                 for t in targets]
        groups = [[t] for t in targets]
    reqs = []
    for call, group in zip(calls, groups, strict=True):
        req = probe if call is base else prepare(state, call, dry_run=dry_run)[0]
        req.targets, req.plan_type, req.record_type = group, None, "candidate"
        reqs.append(req)
    return reqs, why


def _in_flight(state: AppState, number: int) -> list[ItemResult]:
    folder = _folder(number) + "/"
    rows = [r for r in state.ledger.unfinished() if any(t.startswith(folder) for t in r.spec.get("targets") or [])]
    return [ItemResult(label=", ".join(t.rsplit("/", 1)[-1] for t in r.spec["targets"]), status=r.state, job_id=r.id,
                       model=r.model_id, estimate_usd=round(r.estimate_usd, 4)) for r in rows]


# ---------------------------------------------------------------- select, delete, upload

def _select(state: AppState, number: int, path: Path) -> list[str]:
    project = state.project
    m = NAMED.match(path.name)
    assert m is not None
    frame = KIND_OF[m[1]]
    rel, frame_rel = project.rel(path), _frame_file(number, frame)
    data = png_bytes(project, path)
    dest = project.output_path(frame_rel)
    notes = []
    if dest.is_file() and dest.read_bytes() != data and not _is_candidate(project, number, dest.read_bytes()):
        keep = f"{_folder(number)}/{m[1]}-p{_taken(state, number, m[1], 'p') + 1}.png"
        write_file(project, keep, dest.read_bytes())
        old = project.record_path("image", dest)
        if old.is_file():
            record = _record(project, dest)
            project.write_json(project.record_path("image", project.root / keep),
                               {**record, "id": Path(keep).stem, "type": "candidate", "file": keep})
        notes.append(f"The keyframe it replaces was not a candidate; it is kept as {keep}.")
    write_file(project, frame_rel, data)
    when = now_iso()
    record = _record(project, path)
    project.write_json(project.record_path("image", dest), {  # a copy: what it cost stays on the candidate's record
        **{k: v for k, v in record.items() if k != "job_cost_usd"}, "id": dest.stem, "type": "keyframe", "file": frame_rel,
        "cost_usd": 0.0, "selected_from": rel, "selected_at": when})
    chosen = {**_selection(project, number), frame: rel, f"{frame}_selected_at": when}
    project.write_json(project.root / _folder(number) / "selected.json", chosen)
    project.update_plan("image", frame_rel, type_=dest.stem, model=str(record.get("endpoint") or record.get("model") or "upload"),
                        mode=str(record.get("mode") or "-"), status="selected")
    notes.append(f"{rel} is now {frame_rel}; clips made from the earlier keyframe were not touched.")
    return notes


def _is_candidate(project: Project, number: int, data: bytes) -> bool:
    folder = project.root / _folder(number)
    return folder.is_dir() and any(p.read_bytes() == data for p in folder.glob("*.png") if NAMED.match(p.name))


def _delete(state: AppState, number: int, path: Path) -> list[str]:
    project = state.project
    rel = project.rel(path)
    chosen = _selection(project, number)
    for frame in FRAMES:
        if chosen.get(frame) == rel:
            raise InvalidParameterError(f"{rel} is the selected {frame} keyframe of shot {number}; select another first, "
                                        "then delete it.")
    project.record_path("image", path).unlink(missing_ok=True)
    path.unlink()
    return [f"Deleted {rel} and its record."]


def _upload(state: AppState, number: int, frame: str, file: str | None) -> list[str]:
    project = state.project
    if not file or not file.strip():
        raise InvalidParameterError("Pass file, the image to add as a candidate (a path inside the project).")
    source = project.input_path(file.strip())
    data = png_bytes(project, source)
    prefix = FRAMES[frame]
    rel = write_file(project, f"{_folder(number)}/{prefix}-u{_taken(state, number, prefix, 'u') + 1}.png", data)
    project.write_json(project.record_path("image", project.root / rel), {
        "id": Path(rel).stem, "type": "candidate", "file": rel, "mode": "UPLOAD", "source": project.rel(source),
        "cost_usd": 0.0, "timestamp": now_iso()})
    return [f"Added {project.rel(source)} as {rel} (no charge); select it to make it the {frame} keyframe."]


# ---------------------------------------------------------------- the answer

def _listing(state: AppState, number: int) -> tuple[list[Candidate], dict[str, str]]:
    project = state.project
    folder = project.root / _folder(number)
    chosen = _selection(project, number)
    found = []
    for p in folder.glob("*.png") if folder.is_dir() else []:
        if m := NAMED.match(p.name):
            found.append((m[1] != "ff", "cpu".index(m[2]), int(m[3]), p, m))
    out = []
    for _, _, _, p, m in sorted(found, key=lambda x: x[:3]):
        rel, record = project.rel(p), _record(project, p)
        cost = record.get("cost_usd")
        out.append(Candidate(file=rel, frame=KIND_OF[m[1]], source=SOURCE[m[2]], selected=chosen.get(KIND_OF[m[1]]) == rel,
                             model=record.get("model"), cost_usd=cost if isinstance(cost, int | float) else None))
    frames = {f: _frame_file(number, f) for f in FRAMES if (project.root / _frame_file(number, f)).is_file()}
    return out, frames


async def _answer(state: AppState, number: int, *, notes: list[str], jobs: list[ItemResult], action: str,
                  estimate: float | None = None, frame: str | None = None) -> CallToolResult:
    candidates, frames = _listing(state, number)
    going = unfinished(jobs)
    failed = [j for j in jobs if j.status in ("failed", "invalid", "canceled", "unknown")]
    example = next((c.file.rsplit("/", 1)[-1] for c in reversed(candidates) if not c.selected), "ff-c1.png")
    if action == "dry_run":
        nxt = "Nothing was sent or charged. Call again without dry_run to generate."
    elif going:
        nxt = (f"{len(going)} job(s) still running in the server. Call keyframe_candidates(shot={number}, action='list') "
               "in ~20 s (generating again would make and pay for new candidates), or queue_status(job_id).")
    elif failed:
        nxt = f"{failed[0].label}: {failed[0].error}"
    elif action == "select":
        shown = ", ".join(f"image='{f}'" if k == "first" else f"end_image='{f}'" for k, f in frames.items())
        nxt = f"The keyframe is in image/frames/; generate_video({shown}, ...) animates it."
    elif candidates:
        nxt = (f"Compare them (the preview shows them), then keyframe_candidates(shot={number}, action='select', "
               f"candidate='{example}'). generate adds more; upload adds your own.")
    else:
        nxt = f"No candidates yet: keyframe_candidates(shot={number}, action='generate')."
    out = CandidatesResult(shot=number, candidates=candidates, frames=frames, jobs=jobs,
                           estimate_usd=round(estimate, 4) if estimate is not None else None, notes=notes, next_step=nxt)
    chosen = ", ".join(f"{c.frame}: {c.file}" for c in candidates if c.selected) or "none selected"
    text = f"Shot {number}: {len(candidates)} candidate(s) ({chosen}). {' '.join(notes)} {nxt}".replace("  ", " ")
    content: list[Any] = [TextContent(text=text)]
    shown = [c.file for c in candidates if frame is None or c.frame == frame]
    if shown and action in ("generate", "list", "upload"):
        preview = await anyio.to_thread.run_sync(_contact_sheet, state.project.root, shown[-8:])
        if preview is not None:
            content.append(preview)
    return CallToolResult(content=content, structured_content=out.model_dump(mode="json"))


def _contact_sheet(root: Path, files: list[str], side: int = 200) -> ImageContent | None:
    """The candidates side by side, each labelled with its file name, as one small JPEG."""
    from PIL import Image, ImageDraw, ImageOps

    tiles = []
    for rel in files:
        try:
            with Image.open(root / rel) as im:
                tile = ImageOps.exif_transpose(im).convert("RGB")
                tile.thumbnail((side, side))
                tiles.append((rel.rsplit("/", 1)[-1], tile))
        except (OSError, ValueError):
            continue
    if not tiles:
        return None
    cols = min(4, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * side, rows * (side + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, tile) in enumerate(tiles):
        x, y = (i % cols) * side, (i // cols) * (side + 16)
        sheet.paste(tile, (x + (side - tile.width) // 2, y + (side - tile.height) // 2))
        draw.text((x + 4, y + side + 2), name, fill="black")
    for quality in (80, 65, 50, 35, 20):
        buf = io.BytesIO()
        sheet.save(buf, "JPEG", quality=quality)
        if buf.tell() <= THUMB_BYTES:
            return ImageContent(data=base64.b64encode(buf.getvalue()).decode(), mime_type="image/jpeg")
    return None
