"""What the review page shows of every shot: the storyboard's text, the keyframes, the candidates and the
clip (poster, duration, model, cost, the provider's URL and a person's mark from video/plan.md).

Shots come from the storyboard and from the files (a candidates folder or a clip of a shot the
storyboard does not have), so a project without a storyboard can be reviewed too. Read-only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from .. import layout
from ..domain.clips import clip_marks, plan_rows
from ..domain.studio import Studio

log = logging.getLogger("aivp.review")
SHOT_FOLDER = re.compile(r"^shot-(\d{2,3})$")
SHOT_CLIP = re.compile(r"^shot-(\d{2,3})\.mp4$")


def _numbers_on_disk(studio: Studio) -> set[int]:
    """Shots that have a candidates folder or a clip."""
    project, found = studio.project, set()
    for folder, pattern, want_dir in ((layout.CANDIDATES, SHOT_FOLDER, True), (layout.CLIPS, SHOT_CLIP, False)):
        path = project.output_path(folder)
        for p in path.iterdir() if path.is_dir() else []:
            if (m := pattern.match(p.name)) and p.is_dir() == want_dir:
                found.add(int(m[1]))
    return found


def _clip(studio: Studio, number: int, marks: dict[str, str], rows: dict[str, list[str]]) -> dict[str, Any] | None:
    project = studio.project
    rel = layout.clip_path(number)
    path = project.output_path(rel)
    if not path.is_file():
        return None
    record = project.read_json(project.record_path("video", path))
    out = record.get("output")
    out = out if isinstance(out, dict) else {}
    duration = out.get("duration_s")
    if not isinstance(duration, int | float):
        try:
            from ..media import probe_video

            duration = round(probe_video(path).duration_s, 2)
        except Exception as exc:  # a clip that does not decode still shows, without a duration
            log.info("no duration for %s: %s", rel, exc)
            duration = None
    poster = layout.poster_path(rel)
    cells = rows.get(rel)
    cost = record.get("cost_usd")
    url = record.get("video_url") or record.get("output_url")
    return {"file": rel, "poster": poster if project.exists(poster) else None, "duration_s": duration,
            "model": record.get("model") or (cells[3].strip("`") if cells else None),
            "cost_usd": cost if isinstance(cost, int | float) else None, **_sandbox(record),
            "url": url if isinstance(url, str) else None, "plan_status": cells[5] if cells else None,
            "failed": rel in marks, "note": marks.get(rel)}


def _sandbox(record: dict[str, Any]) -> dict[str, Any]:
    """A clip made on a sandbox: a placeholder, and what it would have cost on the real model (a shot cut from a
    group clip has no cost of its own: its group's record carries it)."""
    if record.get("sandbox") is not True:
        return {}
    would = record.get("would_cost_usd")
    return {"sandbox": True, "would_cost_usd": would if isinstance(would, int | float) else None}


def review_shots(studio: Studio) -> dict[str, Any]:
    """Every shot with its text, keyframes, candidate count and clip; storyboard problems in `storyboard`."""
    from ..storyboard import load_storyboard

    project = studio.project
    try:
        sb = load_storyboard(project.root)
        by_number = {s.number: s for s in sb.shots}
        problem = None if sb.shots else f"No shots could be read from {layout.SHOTS}/."
    except Exception as exc:  # the review still shows the files of a project whose storyboard is broken
        by_number, problem = {}, f"The storyboard could not be read: {exc}"
    marks, rows = clip_marks(project), plan_rows(project)
    shots = []
    for number in sorted(set(by_number) | _numbers_on_disk(studio)):
        s = by_number.get(number)
        folder = project.output_path(layout.candidates_folder(number))
        count = sum(1 for p in folder.glob("*.png") if layout.CANDIDATE_NAME.match(p.name)) if folder.is_dir() else 0
        frames = {k: layout.frame_path(number, k) for k in ("first", "last")
                  if project.exists(layout.frame_path(number, k))}
        shots.append({
            "number": number, "id": s.id if s else None, "title": s.title if s else None,
            "scene": s.scene if s else None, "in_storyboard": s is not None,
            "frames_wanted": sorted(s.frames) if s else [],
            "text": s.first_frame_text if s else None, "motion": s.motion_text if s else None,
            "duration_s": s.duration_s if s else None, "frames": frames, "candidates": count,
            "clip": _clip(studio, number, marks, rows)})
    return {"shots": shots, "storyboard": problem}
