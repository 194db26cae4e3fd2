"""A person's verdict on a shot's clip, kept in video/plan.md: marked failed with a note, or ok again.

The mark is the Status cell of the clip's row (`failed (review): <note>`), so it is where the seeds keep
it ("mark failed clips in video/plan.md and regenerate only failed shots"), it survives restarts and a
person can read or edit it. A redo of that shot writes the row anew, which clears the mark. Every file
operation goes through `Project`.
"""

from __future__ import annotations

import re

from .. import layout
from ..errors import InvalidParameterError
from ..project import PLAN_HEADER, Project

MARK = "failed (review)"
NOTE_CHARS = 300


def plan_rows(project: Project) -> dict[str, list[str]]:
    """video/plan.md's table rows by file (cells as written)."""
    rows: dict[str, list[str]] = {}
    in_table = False
    for line in project.plan_text("video").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if tuple(c.lower() for c in cells) == tuple(h.lower() for h in PLAN_HEADER):
            in_table = True
            continue
        if in_table and not line.lstrip().startswith("|"):
            in_table = False
        if in_table and len(cells) >= len(PLAN_HEADER) and cells[2].startswith("`"):
            rows[cells[2].strip("`")] = cells
    return rows


def clip_marks(project: Project) -> dict[str, str]:
    """Clips marked failed after review: project path -> the note."""
    marks = {}
    for file, cells in plan_rows(project).items():
        status = cells[5]
        if status.lower().startswith(MARK):
            marks[file] = status[len(MARK):].lstrip(" :") or "no note"
    return marks


def mark_clip(project: Project, number: int, status: str, note: str | None) -> tuple[str, list[str]]:
    """Mark shot `number`'s clip failed (with what is wrong) or ok in video/plan.md; (clip path, notes)."""
    if status not in ("failed", "ok"):
        raise InvalidParameterError(f"status must be 'failed' or 'ok', not {status!r}.")
    rel = layout.clip_path(number)
    clip = project.output_path(rel)
    if not clip.is_file():
        raise InvalidParameterError(f"Shot {number} has no clip yet ({rel}); there is nothing to mark.")
    text = re.sub(r"\s+", " ", (note or "").replace("|", "/")).strip()
    if status == "failed" and not text:
        raise InvalidParameterError("Say what is wrong with the clip in note (it is written to video/plan.md and "
                                    "guides the redo), e.g. note='the hand melts into the rail'.")
    if len(text) > NOTE_CHARS:
        text = text[:NOTE_CHARS - 1] + "…"
    cells = plan_rows(project).get(rel)
    record = project.read_json(project.record_path("video", clip))
    model = cells[3].strip("`") if cells else str(record.get("endpoint") or record.get("model") or "-")
    mode = cells[4] if cells else str(record.get("mode") or "-")
    cell = f"{MARK}: {text}" if status == "failed" else "done"
    project.update_plan("video", rel, type_=layout.plan_type(rel), model=model, mode=mode, status=cell)
    if status == "failed":
        return rel, [f"{rel} is marked failed in video/plan.md. run_storyboard(mode='run', shots=['{number}'], "
                     f"stages=['clips'], redo=['{number}']) makes it again (plan mode shows the cost first)."]
    return rel, [f"{rel} is marked done in video/plan.md."]
