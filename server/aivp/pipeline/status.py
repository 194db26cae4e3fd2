"""A storyboard as the pipeline sees it: loading it, turning a run's arguments into `Options`, and each
shot's status (from the files in the project, the steps of a run and the jobs still in flight).

Shared by run_storyboard and the review board, so both show the same state.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from ..domain.clips import clip_marks
from ..domain.studio import Studio
from ..errors import InputError
from ..layout import SHOTS, clip_path, frame_path
from .plan import Options, Planner, Step

class ShotState(BaseModel):
    number: int
    id: str
    scene: str
    characters: list[str]
    first_frame: str | None = Field(description="Its keyframe path, with the step status in `frames`")
    last_frame: str | None
    clip: str
    frames: dict[str, str] = Field(description="first/last -> status")
    clip_status: str
    status: str = Field(description="done, running, queued, pending, failed, blocked")
    error: str | None = None



def load(state: Studio) -> Any:
    """The project's storyboard, or an error saying what to write first."""
    from ..storyboard import load_storyboard

    sb = load_storyboard(state.project.root)
    if not sb.shots:
        where = "; ".join(f"{p.file}:{p.line or '-'} {p.message}" for p in sb.problems[:5])
        raise InputError(f"No shots could be read from {SHOTS}/ ({where or 'no files'}). "
                         "Write the storyboard first (shot-01.md ...), then call again.")
    return sb


def shot_numbers(sb: Any, names: list[str] | None) -> set[int] | None:
    """Shot numbers for names like 3, "shot-03" or "1.2"; None for None (all shots)."""
    if names is None:
        return None
    found = set()
    for n in names:
        text = str(n).strip().removeprefix("shot-").removeprefix("Shot ").strip()
        shot = sb.shot(int(text)) if re.fullmatch(r"\d+", text) else sb.shot(text)
        if shot is None:
            known = ", ".join(f"{s.number} ({s.id})" for s in sb.shots)
            raise InputError(f"There is no shot {n!r} in the storyboard; shots are {known}.")
        found.add(shot.number)
    return found


def options_from(sb: Any, shots: list[str] | None, stages: Sequence[str] | None, video_model: str | None,
             image_model: str | None, multi_shot: bool, hero_shots: list[str] | None, hero_model: str | None,
             overrides: dict[str, dict[str, Any]] | None, redo: list[str] | None, audio: bool | None,
             resolution: str | None) -> Options:
    """run_storyboard's arguments as planner Options, every shot name and model checked now."""
    opts = Options(shots=shot_numbers(sb, shots), multi_shot=multi_shot, audio=audio, resolution=resolution,
                   hero=shot_numbers(sb, hero_shots) or set(), redo=shot_numbers(sb, redo) or set())
    if stages:
        opts.stages = tuple(stages)
    for key, name in (("video_model", video_model), ("image_model", image_model), ("hero_model", hero_model)):
        if name:
            setattr(opts, key, name)
            opts.defaulted.pop(key, None)  # named by the caller: "as requested"
    for key, value in (overrides or {}).items():
        (number,) = shot_numbers(sb, [key]) or {0}
        unknown = set(value) - {"model", "image_model", "duration", "audio"}
        if unknown:
            raise InputError(f"Shot override {key!r} has {sorted(unknown)}; use model, image_model, duration, audio.")
        opts.overrides[number] = value
    from ..catalog import resolve

    for name in (opts.video_model, opts.image_model, opts.hero_model, *(v.get("model") for v in opts.overrides.values())):
        if name:
            resolve(name)  # an unknown model is refused now, naming the catalog, not halfway through a run
    return opts



def image_default(state: Studio, opts: Options) -> None:
    """Portraits and keyframes on the project's image default, or on Seedream via BytePlus when its key is set
    (the router's rule), unless the caller named an image model."""
    if "image_model" not in opts.defaulted:
        return
    if state.settings.image_model:
        opts.image_model = state.settings.image_model
        opts.defaulted["image_model"] = "this project's image default (AIVP_IMAGE_MODEL)"
    elif state.settings.key_for("byteplus") is not None and "byteplus" in state.providers:
        opts.image_model = "seedream"
        opts.defaulted["image_model"] = "the image default while ARK_API_KEY is set (BytePlus)"



def default_steps(state: Studio, sb: Any) -> list[Step]:
    """The steps of a plan with default options: what status reports when no run is going."""
    return Planner(sb, state.project, Options()).build()



def file_status(by_target: dict[str, Step], state: Studio, rel: str, in_flight: set[str]) -> str:
    """done, running, the step's status, or missing, for one file of the storyboard."""
    step = by_target.get(rel)
    if state.project.exists(rel) and (step is None or step.status in ("exists", "pending")):
        return "done"
    if rel in in_flight and (step is None or step.status == "pending"):
        return "running"  # a job from an earlier run, still going (or resumed after a restart)
    if step is not None:
        return "done" if step.status == "exists" else step.status
    return "missing"


def shot_states(state: Studio, sb: Any, steps: list[Step]) -> list[ShotState]:
    """Every shot's keyframes and clip: done, running, queued, pending, failed or blocked, with the first error."""
    by_target = {t: s for s in steps for t in s.targets}
    in_flight = {t for row in state.ledger.unfinished() for t in (row.spec.targets or ())}
    marks = clip_marks(state.project)  # clips a person marked failed after looking at them
    shots = []
    for shot in sb.shots:
        frames = {k: file_status(by_target, state, frame_path(shot.number, k), in_flight) for k in shot.frames}
        clip = file_status(by_target, state, clip_path(shot.number), in_flight)
        involved = [s for s in steps if shot.number in s.shots]
        errors = [s.error for s in involved if s.error]
        if clip == "done" and clip_path(shot.number) in marks:
            clip = "failed"
            errors.insert(0, f"Marked failed in video/plan.md: {marks[clip_path(shot.number)]}. Make it again with "
                             f"run_storyboard(mode='run', shots=['{shot.number}'], stages=['clips'], redo=['{shot.number}']).")
        statuses = {clip, *frames.values()}
        overall = ("failed" if statuses & {"failed", "blocked", "invalid"} else "done" if clip in ("done", "exists")
                   else "running" if statuses & {"running", "queued"} else "pending")
        shots.append(ShotState(
            number=shot.number, id=shot.id, scene=shot.scene, characters=list(shot.character_names),
            first_frame=frame_path(shot.number, "first") if "first" in shot.frames else None,
            last_frame=frame_path(shot.number, "last") if "last" in shot.frames else None, clip=clip_path(shot.number),
            frames=frames, clip_status=clip, status=overall, error=errors[0] if errors else None))
    return shots
