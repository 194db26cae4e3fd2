"""`shots/shot-NN.md` -> `Shot`: each section read on its own, so one bad part never costs the others."""

from __future__ import annotations

import re
from typing import Any

from . import values as v
from .context import Ctx
from .markdown import Document, Field, Line, Section, blockquote, fenced, fields, find_field, items, paragraph, squash, tables
from .model import DialogueLine, FrameKind, FrameSpec, MotionPrompt, Shot, ShotCharacter

META = {"shotid": "id", "id": "id", "shot": "id", "scene": "scene", "camera": "camera", "variation": "variation",
        "duration": "duration", "emotion": "emotion", "isprimary": "is_primary", "primary": "is_primary"}
CHARACTER_COLUMNS = {"character": "name", "characters": "name", "name": "name", "firstframe": "first", "ff": "first",
                     "lastframe": "last", "lf": "last", "portraitangle": "angle", "angle": "angle", "portrait": "angle",
                     "facing": "facing", "direction": "facing"}
POSITIONAL = ["name", "first", "last", "angle", "facing"]
VIDEO_PARAMS = frozenset({"input frames", "duration", "aspect ratio", "camera mode", "camera"})
FAMILIES = {"seedance": r"seedance", "kling": r"kling"}


def read_shot(doc: Document, ctx: Ctx, number: int) -> Shot:
    """One shot file; `number` is NN from its name. Problems go to `ctx`, never raised."""
    root = doc.root
    meta, meta_lines = _metadata(root.child(r"^(shot )?metadata$"), ctx)
    title_sec = doc.title
    title = title_sec.title if title_sec else ""
    title_line = title_sec.line if title_sec else None
    title_id = v.shot_id_in(title)
    shot_id = meta.get("id") or title_id
    if not shot_id:
        shot_id = str(number)
        ctx.problem(title_line, "no Shot ID: expected a '| Shot ID | <scene>.<n> |' row in ## Metadata or a title "
                                f"'# Shot <scene>.<n>'; using {shot_id} from the file name")
    elif title_id and meta.get("id") and title_id != meta["id"]:
        ctx.problem(title_line, f"the title says Shot {title_id} but ## Metadata says {meta['id']}; using {meta['id']}")
    scene = ""
    if meta.get("scene"):
        scene = ctx.scene(meta["scene"].split()[0].strip(",;"), meta_lines.get("scene"), meta["scene"])
    else:
        ctx.problem(meta_lines.get("section"), "no Scene: expected a '| Scene | <scene slug> |' row in ## Metadata")
    camera_id, shot_type, angle = v.parse_camera(meta["camera"]) if meta.get("camera") else (None, None, None)

    decomposition = root.child(r"decomposition")
    frames = _frames(root.child(r"aivp[- ]?image|^image\b|keyframe"), ctx)
    motion = _motion(root.child(r"aivp[- ]?video|^video\b|^clips?\b"), ctx)
    audio = _audio(root.child(r"^audio\b|^sound\b"))
    dialogue = _dialogue(audio.get("dialogue", ""), motion, ctx)
    duration = meta.get("duration")
    if duration is None:  # missing or unreadable in ## Metadata: the clip parameters say it too
        duration = next((m.duration_s for m in motion.values() if m.duration_s is not None), None)
    return Shot(
        number=number, id=shot_id, title=title or f"Shot {shot_id}", scene=scene, file=ctx.file,
        camera=meta.get("camera"), camera_id=camera_id, shot_type=shot_type, angle=angle,
        variation=meta.get("variation"), duration_s=duration, emotion=meta.get("emotion"),
        is_primary=meta.get("is_primary"), characters=_characters(root.child(r"^(characters?|cast)$"), ctx),
        first_frame_text=_quote_or_text(decomposition, r"^first[ -]?frame"),
        last_frame_text=_quote_or_text(decomposition, r"^last[ -]?frame"),
        motion_text=_quote_or_text(decomposition, r"^motion"),
        audio=audio, dialogue=dialogue, frames=frames, motion=motion,
    )


def _metadata(section: Section | None, ctx: Ctx) -> tuple[dict[str, Any], dict[str, int]]:
    """The known rows' values, and the line of each row (plus "section": the heading's line)."""
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if section is None:
        return values, lines
    lines["section"] = section.line
    found = tables(section.lines)
    if found:  # a line that breaks the table in two (no pipes) would otherwise vanish without a word
        row_lines = {r.line for t in found for r in ([t.header] if t.header else []) + t.rows} | {t.line + 1 for t in found}
        for ln in section.lines:
            if found[0].line < ln.no < max(row_lines) and ln.no not in row_lines and ln.text.strip():
                ctx.problem(ln.no, f"expected a table row '| Field | Value |' in ## Metadata, got {ln.text.strip()!r}")
    for table in found:
        rows = ([table.header] if table.header and squash(table.header.cells[0]) in META else []) + table.rows
        for row in rows:
            key = META.get(squash(row.cells[0]))
            value = row.cells[1] if len(row.cells) > 1 else ""
            if not row.cells[0] or (key is None and not value):
                ctx.problem(row.line, f"expected a two-column row '| Field | Value |' in ## Metadata, got {row.raw.strip()!r}")
                continue
            if key is None or not value or key in lines:
                continue  # an extra row, an empty value or a repeat: the first one counts
            lines[key] = row.line
            try:
                values[key] = _meta_value(key, value)
            except ValueError as e:
                ctx.problem(row.line, f"{row.cells[0]}: {e}")
    return values, lines


def _meta_value(key: str, value: str) -> object:
    if key == "id":
        return re.sub(r"^shot\s*", "", value, flags=re.IGNORECASE).strip()
    if key == "duration":
        return v.parse_duration(value)
    if key == "is_primary":
        return v.parse_bool(value)
    if key == "variation":
        low = value.lower().split()[0].strip(",;")
        if low not in ("small", "medium", "large"):
            raise ValueError(f"expected small, medium or large, got {value!r}")
        return low
    return value


def _characters(section: Section | None, ctx: Ctx) -> list[ShotCharacter]:
    out: list[ShotCharacter] = []
    for table in tables(section.lines) if section else []:
        columns = POSITIONAL
        rows = table.rows
        if table.header:
            named = [CHARACTER_COLUMNS.get(squash(c), "") for c in table.header.cells]
            if "name" in named:
                columns = named
            else:
                rows = [table.header, *rows]
        for row in rows:
            cell = dict(zip(columns, row.cells, strict=False))  # short rows leave the last columns out
            name = cell.get("name", "").strip()
            if not name or name in ("-", "—"):
                ctx.problem(row.line, f"expected '| @Name | visible | visible | front | <facing> |' in ## Characters, "
                                      f"got {row.raw.strip()!r}")
                continue
            flags = {}
            for col in ("first", "last"):
                try:
                    flags[col] = v.parse_visible(cell[col]) if cell.get(col) else True  # blank: not said, so visible
                except ValueError as e:
                    ctx.problem(row.line, f"{'First' if col == 'first' else 'Last'} Frame of {name}: {e}")
                    flags[col] = True
            angle_text = cell.get("angle", "")
            angle = m.group(1).lower() if (m := v.ANGLE.search(angle_text)) else None
            if angle is None and angle_text.strip(" -—–"):
                ctx.problem(row.line, f"Portrait Angle of {name}: expected front, side or back, got {angle_text!r}")
            out.append(ShotCharacter(ctx.character(name, row.line), flags["first"], flags["last"], angle,
                                     cell.get("facing") or None))
    return out


def _quote_or_text(section: Section | None, pattern: str) -> str | None:
    sub = section.child(pattern) if section else None
    if sub is None:
        return None
    quote = blockquote(sub.lines)
    text = quote[0] if quote else paragraph(sub.lines)
    if not text or re.fullmatch(r"[（(][^)）]*[)）]", text.strip()):  # "(small variation — not required)"
        return None
    return text


def _audio(section: Section | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if section is None:
        return out
    for table in tables(section.lines):
        header_row = table.header and squash(table.header.cells[0]) not in ("layer", "type", "track", "audio")
        rows = ([table.header] if header_row and table.header else []) + table.rows
        for row in rows:
            if len(row.cells) >= 2 and row.cells[0]:
                out.setdefault(row.cells[0].lower(), row.cells[1])
    for f in fields(section.lines):
        out.setdefault(f.key, f.text)
    return out


def _dialogue(audio_text: str, motion: dict[str, MotionPrompt], ctx: Ctx) -> list[DialogueLine]:
    lines = [] if re.fullmatch(r"\W*(none|n/a|no dialogue|无|-)?\W*", audio_text.lower()) else v.parse_dialogue(audio_text)
    if "kling" in motion:  # the Kling block names speakers for lip sync; add what the Audio table lacks
        seen = {v.dedupe_key(d.text) for d in lines}
        lines += [d for d in v.parse_dialogue(motion["kling"].text, bare=False) if v.dedupe_key(d.text) not in seen]
    return [DialogueLine(ctx.speaker(d.speaker), d.text, d.tone) for d in lines]


# ------------------------------------------------------------------ ## For aivp-image


def _frames(section: Section | None, ctx: Ctx) -> dict[str, FrameSpec]:
    out: dict[str, FrameSpec] = {}
    if section is None:
        return out
    candidates = [s for s in section.children if v.frame_kind_in(s.key)] or list(section.walk())
    for sub in candidates:
        kind = v.frame_kind_in(sub.key)
        found = fields(sub.lines)
        if kind is None or (not found and not blockquote(sub.lines)):
            continue  # "### Frame: last-frame (not required)" with nothing under it
        if kind in out:
            ctx.problem(sub.line, f"a second {kind}-frame spec; using the one at line {out[kind].line}")
            continue
        out[kind] = _frame(sub, kind, found, ctx)
    if out and "first" not in out:
        ctx.problem(section.line, "no first-frame spec: expected '### Frame: first-frame' under ## For aivp-image")
    return out


def _frame(sub: Section, kind: FrameKind, found: list[Field], ctx: Ctx) -> FrameSpec:
    refs_field = find_field(found, r"^ref")
    refs = []
    for text, line in items(refs_field.block) if refs_field else []:
        if not re.fullmatch(r"\W*(none|n/a)\W*", text.lower()):
            refs.append(ctx.ref(v.parse_ref(text), line))
    prompt_field = find_field(found, r"^prompt")
    prompt = _block_text(prompt_field.block, prompt_field.value) if prompt_field else None
    if prompt is None and not prompt_field and (q := blockquote(sub.lines)):
        prompt = q[0]
    if not prompt:
        ctx.problem(prompt_field.line if prompt_field else sub.line,
                    "no image prompt: expected '**Prompt**:' followed by a blockquote ('> ...')")
    width = height = ratio = None
    if size := find_field(found, r"^(resolution|size)"):
        try:
            width, height, ratio = v.parse_size(size.value)
        except ValueError as e:
            ctx.problem(size.line, f"Resolution: {e}")
    mode_field = find_field(found, r"^(generation )?mode")
    mode = v.parse_mode(mode_field.value) if mode_field and mode_field.value else ("image-to-image" if refs else "text-to-image")
    return FrameSpec(kind, mode, refs, prompt or None, width, height, ratio, sub.line)


def _block_text(block: list[Line], inline: str) -> str | None:
    quote = blockquote(block)
    if quote:
        return quote[0]
    code = fenced(block)
    return code[0][0] if code else (inline or paragraph(block) or None)


# ------------------------------------------------------------------ ## For aivp-video

PARAMS = {"input frames": v.parse_input_frames, "duration": v.parse_duration, "aspect ratio": v.parse_ratio,
          "camera mode": v.parse_camera_mode, "camera": v.parse_camera_mode}


def _motion(section: Section | None, ctx: Ctx) -> dict[str, MotionPrompt]:
    """Both blocks; a parameter written once (the skill's template puts them after the Seedance block
    only) applies to both: a block's own values first, then the section's, then the other block's."""
    if section is None:
        return {}
    texts: dict[str, str] = {}
    own: dict[str, dict[str, Any]] = {}
    inside: set[int] = set()
    for family, pattern in FAMILIES.items():
        sub = next((s for s in section.walk() if re.search(pattern, s.key)), None)
        if sub is not None:
            inside |= {ln.no for ln in sub.lines} | {sub.line}
            code, quote = fenced(sub.lines), blockquote(sub.lines)
            if code:
                texts[family] = code[0][0]
            elif quote:
                texts[family] = quote[0]
            else:
                ctx.problem(sub.line, f"no motion prompt: expected a fenced code block (```) under '{sub.title}'")
            own[family] = _params(fields(sub.lines, VIDEO_PARAMS), ctx)
            continue
        for f in fields(section.lines):  # the older layout: **Motion prompt** (Kling 3.0 format): > ...
            named = f.key.startswith("motion prompt") and re.search(pattern, f"{f.label} {f.qualifier}".lower())
            if named and (text := _block_text(f.block, f.value)):
                texts[family] = text
    shared = _params(fields([ln for ln in section.lines if ln.no not in inside], VIDEO_PARAMS), ctx)
    out: dict[str, MotionPrompt] = {}
    for family, text in texts.items():
        other = next((p for fam, p in own.items() if fam != family), {})
        p = {**other, **shared, **own.get(family, {})}
        duration = p.get("duration")
        if duration is None and (m := re.search(r"\(\s*duration\s*[:：]\s*([\d.]+)\s*s?\s*\)", text, re.IGNORECASE)):
            duration = float(m.group(1))
        camera = p.get("camera mode", p.get("camera"))
        out[family] = MotionPrompt(family, text, p.get("input frames"), duration, p.get("aspect ratio"), camera)  # type: ignore[arg-type]
    return out


def _params(found: list[Field], ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in found:
        if f.key not in PARAMS or not f.value or f.key in out:
            continue
        try:
            out[f.key] = PARAMS[f.key](f.value)
        except ValueError as e:
            if f.key != "camera":  # the older "Camera: slow dolly-in" is a description, not the mode
                ctx.problem(f.line, f"{f.label}: {e}")
    return out
