"""Keyframe candidates: several takes of a shot's keyframe, one chosen as its representative.

Candidates live in image/candidates/shot-NN/ as ff-c<k>.png / lf-c<k>.png (generated), ff-u<k>.png
(uploaded) and ff-p<k>.png (a representative frame that was replaced and was not a candidate), each
with a record in image/log/. Generating more never removes any. Selecting one copies it to
image/frames/shot-NN-ff.png (or -lf), the file every video tool and run_storyboard use, and writes
the choice to image/candidates/shot-NN/selected.json; clips made from an earlier choice stay as
they are. Every file operation goes through the project's containment check.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from .. import layout
from ..errors import InvalidParameterError
from ..jobs import JobRequest
from ..ledger import now_iso
from ..mentions import MAX_EXTRA_REFS
from ..project import Project
from .batch import Item, ItemResult
from .files import png_bytes
from .prepare import Call, prepare
from .shots import frame_prompt, frame_refs
from .studio import Studio

FRAMES = layout.FRAME_SUFFIX  # first -> ff, last -> lf
KIND_OF = layout.FRAME_OF_SUFFIX
NAMED = layout.CANDIDATE_NAME
SOURCE = {"c": "generated", "u": "upload", "p": "previous frame"}


class Candidate(BaseModel):
    file: str
    frame: str
    source: str = Field(description="generated, upload, or previous frame (a replaced representative kept here)")
    selected: bool
    model: str | None = None
    seed: int | None = None
    cost_usd: float | None = None
    sandbox: bool = False  # made on a sandbox: a placeholder; would_cost_usd is its price on the real model
    would_cost_usd: float | None = None


@dataclass
class ShotRef:
    """A shot by number, with its storyboard entry when the storyboard was read."""

    number: int
    storyboard: Any = None  # (Storyboard, Shot) or None


def find_shot(studio: Studio, shot: int | str, *, need_storyboard: bool) -> ShotRef:
    """A shot by number (3), file stem (shot-03) or storyboard id (1.2)."""
    raw = str(shot).strip().lower()
    text = raw.removeprefix("shot").strip(" _")
    if text.startswith("-") and text[1:].isdigit() and not raw.startswith("shot"):
        raise InvalidParameterError(f"shot must be a positive number (1, 2, 3 ...), not {shot!r}.")
    text = text.lstrip("-")
    if need_storyboard or not text.isdigit():
        from ..storyboard import load_storyboard

        sb = load_storyboard(studio.project.root)
        found = sb.shot(text)
        if found is not None:
            return ShotRef(found.number, (sb, found))
        if not text.isdigit():
            known = ", ".join(f"{s.number} ({s.id})" for s in sb.shots) or "none (no storyboard)"
            raise InvalidParameterError(f"There is no shot {shot!r}; storyboard shots are {known}. Pass a shot number.")
    number = int(text)
    if not 0 < number < 1000:
        raise InvalidParameterError(f"shot must be a number from 1 to 999, not {shot!r}.")
    return ShotRef(number)


def _folder(number: int) -> str:
    return layout.candidates_folder(number)


def taken(studio: Studio, number: int, prefix: str, tag: str) -> int:
    """The highest k used by a file, or by a job still making one, for `<prefix>-<tag><k>.png`."""
    names = [p.name for p in studio.project.files(_folder(number), "*.png")]
    for row in studio.ledger.unfinished():
        names += [t.rsplit("/", 1)[-1] for t in row.spec.targets or () if t.startswith(_folder(number) + "/")]
    used = [int(m[3]) for n in names if (m := NAMED.match(n)) and m[1] == prefix and m[2] == tag]
    return max(used, default=0)


def named(project: Project, number: int, candidate: str | None) -> Path:
    """The candidate file a caller named, inside this shot's folder only."""
    if not candidate or not candidate.strip():
        raise InvalidParameterError("Pass candidate, the file to use, e.g. candidate='ff-c2.png' (list_candidates "
                                    "shows them).")
    raw = candidate.strip()
    name = raw.rsplit("/", 1)[-1]
    name = name if name.endswith(".png") else f"{name}.png"
    folder = project.output_path(_folder(number))
    if "/" in raw and project.output_path(raw if raw.endswith(".png") else f"{raw}.png").parent != folder:
        raise InvalidParameterError(f"{raw!r} is not a candidate of shot {number} (those are in {_folder(number)}/).")
    path = project.output_path(f"{_folder(number)}/{name}")
    if not NAMED.match(name) or not path.is_file():
        have = ", ".join(p.name for p in project.files(_folder(number), "*.png") if NAMED.match(p.name))
        raise InvalidParameterError(f"Shot {number} has no candidate {name!r}; it has {have or 'none yet'}.")
    return path


def selection(project: Project, number: int) -> dict[str, Any]:
    return project.read_json(layout.selection_file(number))


def record_of(project: Project, path: Path) -> dict[str, Any]:
    return project.read_json(project.record_path("image", path))


# ---------------------------------------------------------------- generate

@dataclass
class Generation:
    """The jobs that make a set of candidates, checked and priced, not started yet."""

    items: list[Item]
    notes: list[str]
    estimate_usd: float


def plan_generation(studio: Studio, shot: ShotRef, frame: str, count: int, prompt: str | None,
                    references: list[str] | None, variations: dict[str, str] | None, model: str | None,
                    dry_run: bool) -> Generation:
    """Check and price `count` new candidates for a frame (the storyboard's prompt when none is given)."""
    notes: list[str] = []
    ratio = None
    if prompt is None:
        prompt, refs, ratio, why = from_storyboard(studio, shot, frame)
        notes.append(f"Prompt from the storyboard ({why}).")
        if references is None:
            references = refs[:MAX_EXTRA_REFS]
            if len(refs) > MAX_EXTRA_REFS:
                notes.append(f"Kept the first {MAX_EXTRA_REFS} storyboard references; left out "
                             f"{', '.join(refs[MAX_EXTRA_REFS:])}.")
    start = taken(studio, shot.number, FRAMES[frame], "c") + 1
    targets = [layout.candidate_path(shot.number, frame, "c", start + i) for i in range(count)]
    base = Call("generate_candidates", "image", "edit" if references else "t2i", model,
                {"prompt": prompt, "references": references or None, "aspect_ratio": ratio},
                output=targets[0], variations=variations)
    reqs, why = requests(studio, base, targets, dry_run)
    items = [Item(", ".join(PurePosixPath(t).name for t in r.targets or []), make=_made(r, why),
                  model=r.built.model.id, estimate_usd=round(r.estimate.usd, 4)) for r in reqs]
    notes += [w for w in reqs[0].built.warnings if w not in notes]
    notes.append(f"Model: {why}.")
    return Generation(items, notes, sum(i.estimate_usd or 0 for i in items))


def _made(req: JobRequest, why: str) -> Any:
    return lambda: (req, why)


def from_storyboard(studio: Studio, shot: ShotRef, frame: str) -> tuple[str, list[str], str | None, str]:
    """The storyboard's prompt, references and aspect ratio for a frame, and which references and why."""
    if shot.storyboard is None:
        raise InvalidParameterError(f"Pass prompt: there is no storyboard shot {shot.number} to take the frame's "
                                    "prompt from.")
    sb, s = shot.storyboard
    spec = s.frames.get(frame)
    if spec is None:
        raise InvalidParameterError(f"Shot {s.id} has no {frame} frame in the storyboard; pass prompt to make one "
                                    "anyway.")
    refs, why = frame_refs(sb, s, frame, studio.project.exists)
    ratio = spec.ratio or next((m.aspect_ratio for m in s.motion.values() if m.aspect_ratio), None)
    return frame_prompt(sb, s, frame), refs, ratio, why


def requests(studio: Studio, base: Call, targets: list[str], dry_run: bool) -> tuple[list[JobRequest], str]:
    """One job making every candidate when the model takes num_images that high, else one job each
    with its own seed (the same request twice would be the same picture)."""
    probe, why = prepare(studio, base, dry_run=dry_run)
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
        req = probe if call is base else prepare(studio, call, dry_run=dry_run)[0]
        req.targets, req.plan_type, req.record_type = group, None, "candidate"
        reqs.append(req)
    return reqs, why


def in_flight(studio: Studio, number: int) -> list[ItemResult]:
    """Jobs still making candidates of this shot."""
    folder = _folder(number) + "/"
    rows = [r for r in studio.ledger.unfinished() if any(t.startswith(folder) for t in r.spec.targets or ())]
    return [ItemResult(label=", ".join(PurePosixPath(t).name for t in r.spec.targets or ()), status=r.state,
                       job_id=r.id, model=r.model_id, estimate_usd=round(r.estimate_usd, 4)) for r in rows]


# ---------------------------------------------------------------- select, delete, upload

def select(studio: Studio, number: int, path: Path) -> list[str]:
    """Make a candidate the representative keyframe (image/frames/shot-NN-ff.png), keeping what it replaces."""
    project = studio.project
    m = NAMED.match(path.name)
    if m is None:
        raise InvalidParameterError(f"{path.name} is not a candidate file name (ff-c1.png, lf-u2.png ...).")
    frame = KIND_OF[m[1]]
    rel, frame_rel = project.rel(path), layout.frame_path(number, frame)
    data = png_bytes(project, path)
    dest = project.output_path(frame_rel)
    notes = []
    if dest.is_file() and dest.read_bytes() != data and not _is_candidate(project, number, dest.read_bytes()):
        keep = layout.candidate_path(number, frame, "p", taken(studio, number, m[1], "p") + 1)
        project.write_bytes(keep, dest.read_bytes())
        if project.record_path("image", dest).is_file():
            record = record_of(project, dest)
            project.write_json(project.record_path("image", project.root / keep),
                               {**record, "id": Path(keep).stem, "type": "candidate", "file": keep})
        notes.append(f"The keyframe it replaces was not a candidate; it is kept as {keep}.")
    project.write_bytes(frame_rel, data)
    when = now_iso()
    record = record_of(project, path)
    project.write_json(project.record_path("image", dest), {  # a copy: what it cost stays on the candidate's record
        **{k: v for k, v in record.items() if k not in ("job_cost_usd", "would_cost_usd")}, "id": dest.stem,
        "type": "keyframe", "file": frame_rel,
        "cost_usd": 0.0, "selected_from": rel, "selected_at": when})
    chosen = {**selection(project, number), frame: rel, f"{frame}_selected_at": when}
    project.write_json(project.root / layout.selection_file(number), chosen)
    project.update_plan("image", frame_rel, type_=dest.stem, model=str(record.get("endpoint") or record.get("model") or "upload"),
                        mode=str(record.get("mode") or "-"), status="selected")
    notes.append(f"{rel} is now {frame_rel}; clips made from the earlier keyframe were not touched.")
    return notes


def _is_candidate(project: Project, number: int, data: bytes) -> bool:
    return any(p.read_bytes() == data for p in project.files(_folder(number), "*.png") if NAMED.match(p.name))


def delete(studio: Studio, number: int, path: Path) -> list[str]:
    """Remove a candidate and its record (never the selected one)."""
    project = studio.project
    rel = project.rel(path)
    chosen = selection(project, number)
    for frame in FRAMES:
        if chosen.get(frame) == rel:
            raise InvalidParameterError(f"{rel} is the selected {frame} keyframe of shot {number}; select another first, "
                                        "then delete it.")
    project.delete(project.record_path("image", path))
    project.delete(rel)
    return [f"Deleted {rel} and its record."]


def upload(studio: Studio, number: int, frame: str, file: str | None) -> list[str]:
    """Add a person's own image as a candidate (free)."""
    project = studio.project
    if not file or not file.strip():
        raise InvalidParameterError("Pass file, the image to add as a candidate (a path inside the project).")
    source = project.input_path(file.strip())
    data = png_bytes(project, source)
    k = taken(studio, number, FRAMES[frame], "u") + 1
    rel = project.write_bytes(layout.candidate_path(number, frame, "u", k), data)
    project.write_json(project.record_path("image", project.root / rel), {
        "id": Path(rel).stem, "type": "candidate", "file": rel, "mode": "UPLOAD", "source": project.rel(source),
        "cost_usd": 0.0, "timestamp": now_iso()})
    return [f"Added {project.rel(source)} as {rel} (no charge); select it to make it the {frame} keyframe."]


# ---------------------------------------------------------------- listing

def listing(studio: Studio, number: int) -> tuple[list[Candidate], dict[str, str]]:
    """The candidates of a shot (first frame before last; generated, uploaded, previous) and its keyframes."""
    project = studio.project
    chosen = selection(project, number)
    found = []
    for p in project.files(_folder(number), "*.png"):
        if m := NAMED.match(p.name):
            found.append((m[1] != "ff", "cpu".index(m[2]), int(m[3]), p, m))
    out = []
    for _, _, _, p, m in sorted(found, key=lambda x: x[:3]):
        rel, record = project.rel(p), record_of(project, p)
        cost, seed, would = record.get("cost_usd"), record.get("seed"), record.get("would_cost_usd")
        out.append(Candidate(file=rel, frame=KIND_OF[m[1]], source=SOURCE[m[2]], selected=chosen.get(KIND_OF[m[1]]) == rel,
                             model=record.get("model"), seed=seed if isinstance(seed, int) else None,
                             cost_usd=cost if isinstance(cost, int | float) else None, sandbox=record.get("sandbox") is True,
                             would_cost_usd=would if isinstance(would, int | float) else None))
    frames = {f: layout.frame_path(number, f) for f in FRAMES if project.exists(layout.frame_path(number, f))}
    return out, frames
