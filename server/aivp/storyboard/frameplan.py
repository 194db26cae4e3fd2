"""`storyboard-final/frame-plan.md` -> `FramePlanEntry` list, in the order the file lists them."""

from __future__ import annotations

import re
from collections.abc import Iterator

from . import values as v
from .context import Ctx
from .markdown import Document, Field, Section, fields, find_field, items
from .model import FramePlanEntry

ENTRY = re.compile(r"^frame\s*#?\s*(?P<k>\d+)\s*[—–:-]*\s*shot\s*(?P<id>\d+(?:\.\d+)*[a-z]?)\W+(?P<kind>first|last)[\s-]*frame",
                   re.IGNORECASE)
PLAIN = frozenset({"camera", "parent", "scene", "references", "generation mode", "mode", "notes", "variation"})


def project_name(doc: Document) -> str | None:
    """`# Frame Generation Plan — Lighthouse` -> "Lighthouse"."""
    title = doc.title
    if title is None:
        return None
    m = re.match(r"^.*?plan\s*[—–:-]+\s*(.+)$", title.title, re.IGNORECASE)
    return m.group(1).strip() if m else None


def read_frame_plan(doc: Document, ctx: Ctx, shot_ids: list[str]) -> list[FramePlanEntry]:
    out: list[FramePlanEntry] = []
    seen: dict[tuple[str, str], int] = {}
    for section, priority in _walk(doc.root, None):
        m = ENTRY.match(section.title)
        if not m:
            if re.match(r"^frame\s*#?\s*\d", section.title, re.IGNORECASE):
                ctx.problem(section.line, f"expected '#### Frame <k> — Shot <scene>.<n> first-frame' (or last-frame), "
                                          f"got {section.title!r}")
            continue
        shot_id, kind = m.group("id"), m.group("kind").lower()
        if shot_id not in shot_ids:
            ctx.problem(section.line, f"Frame {m.group('k')} is for Shot {shot_id}, which has no shot file; known shots: "
                                      f"{', '.join(shot_ids) or 'none'}")
        if (shot_id, kind) in seen:
            ctx.problem(section.line, f"Shot {shot_id} {kind}-frame is already planned at line {seen[shot_id, kind]}; "
                                      "list each frame once")
            continue
        seen[shot_id, kind] = section.line
        out.append(_entry(section, int(m.group("k")), shot_id, kind, priority, ctx))
    return out


def _walk(section: Section, priority: int | None) -> Iterator[tuple[Section, int | None]]:
    for child in section.children:
        m = re.match(r"^priority\s*(\d+)", child.key)
        p = int(m.group(1)) if m else priority
        yield child, p
        yield from _walk(child, p)


def _entry(section: Section, index: int, shot_id: str, kind: str, priority: int | None, ctx: Ctx) -> FramePlanEntry:
    found = fields(section.body, PLAIN)
    refs_field = find_field(found, r"^ref")
    refs = [ctx.ref(v.parse_ref(text), line) for text, line in (items(refs_field.block) if refs_field else [])
            if not re.fullmatch(r"\W*(none|n/a)\W*", text.lower())]
    if refs_field and refs_field.value and not refs:  # "**References**: Shot 1.1 first-frame" on one line
        refs = [ctx.ref(v.parse_ref(part), refs_field.line) for part in re.split(r"[;；]", refs_field.value) if part.strip()]
    scene_field = find_field(found, r"^scene$")
    scene = None
    if scene_field and scene_field.value:
        scene = ctx.scene(scene_field.value.split()[0], scene_field.line, scene_field.value)
    mode_field = find_field(found, r"^(generation )?mode$")
    notes_field = find_field(found, r"^notes?$")
    parent = _value(find_field(found, r"^parent"))
    return FramePlanEntry(
        index=index, shot_id=shot_id, kind=kind,  # type: ignore[arg-type]
        camera=_value(find_field(found, r"^camera$")), scene=scene,
        parent=parent, parent_shot=v.shot_id_in(parent or ""),  # the data class does not parse: it is found here
        references=refs, mode=v.parse_mode(mode_field.value) if mode_field and mode_field.value else None,
        notes=notes_field.text or None if notes_field else None, priority=priority, line=section.line,
    )


def _value(f: Field | None) -> str | None:
    return f.value or None if f else None
