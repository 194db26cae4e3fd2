"""`load_storyboard(root)`: read a project's script and storyboard files, never raising for their content."""

from __future__ import annotations

import re
from pathlib import Path

from .. import layout
from ..errors import InputFileError
from ..project import contained
from .context import Ctx
from .frameplan import project_name, read_frame_plan
from .markdown import Document, Section, blockquote, clean, heading_key, items, paragraph, parse
from .model import Character, Problem, Scene, Shot, Storyboard
from .order import keyframe_order, plan_numbers
from .shots import read_shot

FINAL = layout.STORYBOARD
PLAN = layout.FRAME_PLAN
SHOTS = layout.SHOTS
SKIP = re.compile(r"^(readme|index|_.*|\..*)\.md$", re.IGNORECASE)
OUTSIDE = ("is a symbolic link that points outside the project (or into a hidden folder); aivp does not read "
           "it. Replace the link with the file itself")


def load_storyboard(root: Path) -> Storyboard:
    """Everything under `root` the video pipeline reads, with a `Problem` for each part it could not use.

    Raises `InputFileError` only when `root` is not an existing folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise InputFileError(f"The project root {str(root)!r} {what}; pass the folder that holds script/ and storyboard/.")
    root = root.resolve()
    ctx = load_cast(root)
    problems = ctx.problems

    if not (root / FINAL).is_dir():
        problems.append(Problem(FINAL, None, f"there is no {FINAL}/ folder in {root}: write the storyboard there first "
                                             "(shots/shot-01.md ... and frame-plan.md), or pass the right project root"))
        return Storyboard(root, [], ctx.characters, ctx.scenes, [], problems, keyframe_plan=[])

    shots = _shots(root, ctx)
    plan, project = [], None
    has_plan = (root / PLAN).is_file()
    if has_plan:
        doc = _read(root, root / PLAN, ctx)
        plan = read_frame_plan(doc, ctx.at(PLAN), [s.id for s in shots])
        project = project_name(doc)
    # Worked out once here and stored, so the data classes need not know the ordering rules.
    order, notes = keyframe_order(shots, plan)
    for line, message in notes:  # without a plan file, only a reference cycle can be reported
        problems.append(Problem(PLAN, line, message) if has_plan else Problem(SHOTS, None, message))
    return Storyboard(root, shots, ctx.characters, ctx.scenes, plan, problems, project, plan_numbers(order))


def load_cast(root: Path) -> Ctx:
    """The characters (script/characters/) and scenes (script/scenes/) of a project, with their problems."""
    ctx = Ctx("", [], {}, {})
    for path in _markdown_files(root, root / layout.SCRIPT_CHARACTERS, ctx):
        character = _character(_read(root, path, ctx), ctx.at(_rel(root, path)), path.stem)
        if (clash := ctx.characters.get(character.name.lower())) is not None:
            ctx.at(character.file).problem(1, f"a second sheet for {character.name} (the first is {clash.file}); "
                                              "keep one file per character")
            continue
        ctx.characters[character.name.lower()] = character
    for path in _markdown_files(root, root / layout.SCRIPT_SCENES, ctx):
        scene = _scene(_read(root, path, ctx), ctx.at(_rel(root, path)), path.stem)
        ctx.scenes[scene.slug] = scene
    return ctx


def _markdown_files(root: Path, folder: Path, ctx: Ctx) -> list[Path]:
    """The Markdown files of a folder that are inside the project; a link out of it is reported, not read."""
    if not folder.is_dir():
        return []
    found = []
    for p in sorted(folder.glob("*.md")):
        if SKIP.match(p.name) or not p.is_file():
            continue
        if not contained(root, p):
            ctx.at(_rel(root, p)).problem(None, OUTSIDE)
            continue
        found.append(p)
    return found


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _read(root: Path, path: Path, ctx: Ctx) -> Document:
    file_ctx = ctx.at(_rel(root, path))
    if not contained(root, path):
        file_ctx.problem(None, OUTSIDE)
        return parse(b"")
    try:
        data = path.read_bytes()
    except OSError as e:  # unreadable (permissions, a broken link): reported, read as empty
        file_ctx.problem(None, f"cannot be read ({e.strerror or e}); check the file's permissions")
        data = b""
    doc = parse(data)
    if doc.undecodable_line:
        file_ctx.problem(doc.undecodable_line, "this line is not valid UTF-8; save the file as UTF-8 "
                                               "(unreadable characters were replaced with �)")
    for line, message in doc.warnings:
        file_ctx.problem(line, message)
    return doc


def _shots(root: Path, ctx: Ctx) -> list[Shot]:
    files = _markdown_files(root, root / SHOTS, ctx)
    if not files:
        ctx.at(SHOTS).problem(None, f"no shot files: expected {SHOTS}/shot-01.md, shot-02.md, ...")
        return []
    shots: dict[int, Shot] = {}
    for path in files:
        rel = _rel(root, path)
        m = re.fullmatch(r"shot[-_ ]?(\d+)\.md", path.name, re.IGNORECASE)
        if not m:
            ctx.at(rel).problem(None, "expected a file name shot-NN.md (NN = 01, 02, ...); this file was skipped")
            continue
        number = int(m.group(1))
        if number in shots:
            ctx.at(rel).problem(None, f"{shots[number].file} already has number {number}; this file was skipped")
            continue
        shots[number] = read_shot(_read(root, path, ctx), ctx.at(rel), number)
    ids: dict[str, Shot] = {}
    for shot in sorted(shots.values(), key=lambda s: s.number):
        if shot.id in ids:
            ctx.at(shot.file).problem(None, f"Shot ID {shot.id} is also the ID of {ids[shot.id].file}; give each shot its own ID")
        ids.setdefault(shot.id, shot)
    for shot in sorted(shots.values(), key=lambda s: s.number):
        for spec in shot.frames.values():
            for ref in spec.references:
                if ref.kind == "frame" and ref.shot not in ids:
                    ctx.at(shot.file).problem(spec.line, f"the {spec.kind}-frame references Shot {ref.shot}, which has no shot "
                                                         f"file; known shots: {', '.join(ids)}")
    return sorted(shots.values(), key=lambda s: s.number)


def _title(doc: Document, prefix: str) -> str | None:
    title = doc.title
    if title is None:
        return None
    return re.sub(rf"^{prefix}\s*[:：—–-]?\s*", "", title.title, flags=re.IGNORECASE).strip() or None


def _section_text(section: Section | None) -> str | None:
    if section is None:
        return None
    text = "\n".join(ln.text for ln in section.lines).strip()
    return text or None


def _quote(section: Section | None) -> str | None:
    """A section's blockquote (one pair of enclosing quote marks dropped), else its plain text."""
    if section is None:
        return None
    quote = blockquote(section.lines)
    text = quote[0] if quote else paragraph(section.lines)
    if len(text) > 1 and (text[0], text[-1]) in (('"', '"'), ("“", "”"), ("「", "」")):
        text = text[1:-1].strip()
    return text or None


def _character(doc: Document, ctx: Ctx, stem: str) -> Character:
    top = doc.title or doc.root
    anchor_section = doc.root.child(r"anchor")
    if anchor_section is None:
        ctx.problem(None, "no '## Prompt Anchor Phrase' (a blockquote with the description to repeat in every prompt)")
    sections = {heading_key(s.title): _section_text(s) or "" for s in top.children if s is not anchor_section}
    return Character(name=_title(doc, "character") or stem, slug=stem, file=ctx.file, anchor=_quote(anchor_section),
                     sections=sections, outfits=_outfits(doc.root.child(r"dynamic|outfit|costume|wardrobe")))


def _outfits(section: Section | None) -> list[str]:
    """Best effort: values of bullets labelled '... outfit(s)', default first; 'none' skipped."""
    out: list[str] = []
    if section is None:
        return out
    for text, _line in items(section.lines):
        m = re.match(r"^\**\s*([^:*：]*outfits?[^:*：]*?)\s*[:：]?\s*\**\s*[:：]?\s*(.*)$", text, re.IGNORECASE)
        if not m:
            continue
        value = clean(m.group(2))
        several = m.group(1).lower().rstrip().endswith("outfits")  # "Alt outfits: a; b"
        for part in re.split(r"\s*[;；]\s*", value) if several else [value]:
            if part.strip() and not re.match(r"^[(（]?\s*(none|n/a|-|—)\b", part.strip(), re.IGNORECASE):
                out.append(part.strip())
    return out


def _scene(doc: Document, ctx: Ctx, slug: str) -> Scene:
    root = doc.root
    prompt_section = root.child(r"prompt")
    if prompt_section is None:
        ctx.problem(None, "no '## Scene Prompt' (a blockquote describing the empty background, 'No people')")
    return Scene(slug=slug, name=_title(doc, "scene") or slug, file=ctx.file, prompt=_quote(prompt_section),
                 environment=_section_text(root.child(r"^environment")), lighting=_section_text(root.child(r"^lighting")),
                 atmosphere=_section_text(root.child(r"^atmosphere")))
