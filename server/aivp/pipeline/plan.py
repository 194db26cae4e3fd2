"""From a storyboard to the ordered steps that make its portraits, locations, keyframes and clips.

Each step is one generation call in generic terms (a `Call`, exactly what a tool would build), with
its output path, the steps it waits for and a word on why it uses that model. A step whose file is
already there is `exists` and costs nothing, so running a plan again only does what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..catalog import resolve
from ..catalog.routing import ref_cap
from ..domain.multishot import ElementIn, ShotIn, multishot_call
from ..domain.prepare import Call
from ..domain.shots import PORTRAIT_VIEWS, frame_prompt, frame_refs
from ..domain.studio import Studio
from ..layout import clip_path, frame_path, location_path, portrait_path
from ..project import Project

if TYPE_CHECKING:
    from ..storyboard import Shot, Storyboard

DEFAULT_VIDEO_MODEL = "seedance-2.0"  # the aivp-video seed: Seedance 2.0 replaces 1.5 once it is on fal
DEFAULT_IMAGE_MODEL = "nano-banana-pro"
DEFAULT_MULTI_MODEL = "kling-o3-pro"
DEFAULT_HERO_MODEL = "kling-v3-pro"
# why a model the caller did not name runs a step (options_from drops the ones the caller named)
DEFAULT_WHY = {"image_model": "the storyboard's image default", "video_model": "the storyboard's clip default",
               "multi_model": "the storyboard's multi-shot default", "hero_model": "the storyboard's hero-shot default"}


@dataclass
class Options:
    """What a run may change; everything has a default taken from the seeds' strategy."""

    shots: set[int] | None = None  # only these shots (and what they need)
    stages: tuple[str, ...] = ("portraits", "locations", "keyframes", "clips")
    image_model: str = DEFAULT_IMAGE_MODEL
    video_model: str = DEFAULT_VIDEO_MODEL
    multi_shot: bool = False  # Kling O3 multi-shot for dialogue groups with recurring characters
    multi_model: str = DEFAULT_MULTI_MODEL
    hero: set[int] = field(default_factory=set)
    hero_model: str = DEFAULT_HERO_MODEL
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)  # per shot: model, duration, audio ...
    redo: set[int] = field(default_factory=set)  # regenerate these shots' keyframes and clips
    audio: bool | None = None
    resolution: str | None = None
    aspect_ratio: str = "16:9"
    defaulted: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_WHY))  # option -> why, when not named


@dataclass
class Step:
    key: str
    kind: str  # portrait | location | keyframe | clip | group
    make: Callable[[Studio, frozenset[str]], Call]  # (studio, files still to be made) -> the call, built late
    targets: list[str]
    deps: list[str]
    shots: list[int]
    plan_kind: str  # image | video
    note: str = ""
    fresh: bool = False  # named in `redo`: make it again even though its file exists
    status: str = "pending"  # pending | exists | queued | running | done | failed | blocked
    job_id: str | None = None
    error: str | None = None
    estimate_usd: float = 0.0
    model: str = ""
    endpoint: str = ""
    mode: str = ""
    sandbox: bool = False  # its provider is a sandbox: a placeholder, nothing charged

    def public(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "shots": self.shots, "files": self.targets, "status": self.status,
                "model": self.model, "endpoint": self.endpoint, "mode": self.mode, "estimate_usd": round(self.estimate_usd, 4),
                "job_id": self.job_id, "error": self.error, "note": self.note, "waits_for": self.deps,
                **({"sandbox": True} if self.sandbox else {})}


def _const(call: Call) -> Callable[[Studio, frozenset[str]], Call]:
    return lambda state, planned: call


class Planner:
    """Builds the steps for one storyboard and one set of options."""

    def __init__(self, sb: Storyboard, project: Project, opts: Options) -> None:
        self.sb, self.project, self.opts = sb, project, opts
        self.steps: dict[str, Step] = {}
        self.by_target: dict[str, str] = {}
        self.shots = [s for s in sb.shots if opts.shots is None or s.number in opts.shots]

    def exists(self, rel: str) -> bool:
        return self.project.exists(rel)

    def available(self, rel: str) -> bool:
        """There now, or made by an earlier step of this plan."""
        return self.exists(rel) or rel in self.by_target

    def add(self, step: Step, redo: bool = False) -> None:
        step.fresh = redo
        if all(self.exists(t) for t in step.targets) and not redo:
            step.status = "exists"
        self.steps[step.key] = step
        for t in step.targets:
            self.by_target[t] = step.key

    def dep(self, rel: str) -> list[str]:
        key = self.by_target.get(rel)
        return [key] if key and self.steps[key].status != "exists" else []

    # ---------------------------------------------------------------- stages

    def build(self) -> list[Step]:
        if "portraits" in self.opts.stages:
            self.portraits()
        if "locations" in self.opts.stages:
            self.locations()
        if "keyframes" in self.opts.stages:
            self.keyframes()
        if "clips" in self.opts.stages:
            self.clips()
        return list(self.steps.values())

    def portraits(self) -> None:
        for c in self._characters():
            front = portrait_path(c.slug, "front")
            for view in PORTRAIT_VIEWS:
                target = portrait_path(c.slug, view)
                anchor = c.anchor or c.name
                look = {"front": "front view", "side": "side view, profile", "back": "back view"}[view]
                prompt = (f"Character reference sheet of {c.name}: full body, {look}, neutral standing pose, plain "
                          f"light-grey background, even studio lighting. {anchor}")
                refs = [] if view == "front" else [front]
                call = Call("generate_image", "image", "edit" if refs else "t2i", self.opts.image_model,
                            {"prompt": prompt if view == "front" else f"The same character as in the reference image, {look}. {prompt}",
                             "references": refs or None, "aspect_ratio": "3:4"}, output=target,
                            model_from=self.opts.defaulted.get("image_model"))
                self.add(Step(f"portrait:{c.slug}:{view}", "portrait", _const(call), [target], self.dep(front) if refs else [],
                              [], "image", note=f"{c.name} {view}" + ("" if view == "front" else ", from the front view")))

    def locations(self) -> None:
        for slug in dict.fromkeys(s.scene for s in self.shots if s.scene):
            scene = self.sb.scenes.get(slug)
            if scene is None or not scene.prompt:
                continue
            target = location_path(slug)
            call = Call("generate_image", "image", "t2i", self.opts.image_model,
                        {"prompt": scene.prompt, "aspect_ratio": self.opts.aspect_ratio}, output=target,
                        model_from=self.opts.defaulted.get("image_model"))
            self.add(Step(f"location:{slug}", "location", _const(call), [target], [], [], "image", note=f"{scene.name}, empty"))

    def keyframes(self) -> None:
        wanted = {s.number for s in self.shots}
        for shot, kind in self.sb.keyframe_order():
            if shot.number not in wanted or kind not in shot.frames:
                continue
            spec = shot.frames[kind]
            target = frame_path(shot.number, kind)
            refs, note = frame_refs(self.sb, shot, kind, self.available)
            prompt = frame_prompt(self.sb, shot, kind)
            ratio = spec.ratio or self._ratio(shot)
            model = self._override(shot, "image_model") or self.opts.image_model
            refs, dropped = self._cap_refs(model, refs)
            if dropped:
                note += f"; {len(dropped)} reference(s) dropped for the model's limit: {', '.join(dropped)}"
            why = None if self._override(shot, "image_model") else self.opts.defaulted.get("image_model")
            call = Call("generate_image", "image", "edit" if refs else "t2i", model,
                        {"prompt": prompt, "references": refs or None, "aspect_ratio": ratio}, output=target,
                        model_from=why)
            deps = [d for r in refs for d in self.dep(r)]
            self.add(Step(f"frame:{shot.number:02d}:{kind}", "keyframe", _const(call), [target], deps, [shot.number], "image",
                          note=note), redo=shot.number in self.opts.redo)

    def clips(self) -> None:
        grouped: set[int] = set()
        if self.opts.multi_shot:
            limits = resolve(self.opts.multi_model).model.limits
            solo = set(self.opts.hero) | set(self.opts.overrides)  # hero and overridden shots are made on their own
            for group in self.sb.groups(max_shots=limits.max_shots or 6, max_total_s=limits.max_total_s):
                members = [s for s in group if s.number in {x.number for x in self.shots} and s.number not in solo]
                if len(members) >= 2 and len({c for s in members for c in s.character_names}) >= 2:
                    self._group(members)
                    grouped.update(s.number for s in members)
        for shot in self.shots:
            if shot.number not in grouped:
                self._clip(shot)

    # ---------------------------------------------------------------- one clip / one group

    def _clip(self, shot: Shot) -> None:
        model = self._override(shot, "model") or (self.opts.hero_model if shot.number in self.opts.hero else self.opts.video_model)
        family = "seedance" if "seedance" in resolve(model).model.id else "kling"
        motion = shot.motion.get(family) or shot.motion.get("kling") or shot.motion.get("seedance")
        prompt = motion.text if motion else (shot.motion_text or shot.first_frame_text or f"Shot {shot.id}")
        if family == "seedance":  # @图片N names reference inputs; a clip from keyframes sends frames, not references
            prompt = re.sub(r"@(图片|视频|音频)(\d+)", r"\1\2", prompt)
        ff, lf = frame_path(shot.number, "first"), frame_path(shot.number, "last")
        has_ff, has_lf = self.available(ff), self.available(lf)
        wants_lf = shot.needs_last_frame or (motion is not None and motion.input_frames == "first+last")
        use_lf = has_ff and has_lf and wants_lf
        duration = self._override(shot, "duration") or (motion.duration_s if motion and motion.duration_s else shot.duration_s)
        roles: dict[str, Any] = {
            "prompt": prompt, "start_image": ff if has_ff else None, "end_image": lf if use_lf else None,
            "duration": self._snap_duration(model, "i2v" if has_ff else "t2v", duration),
            "aspect_ratio": (motion.aspect_ratio if motion and motion.aspect_ratio else None) or self._ratio(shot),
            "audio": self._override(shot, "audio") if self._override(shot, "audio") is not None else self.opts.audio,
            "camera_fixed": motion.camera_fixed if motion else None, "resolution": self.opts.resolution,
        }
        task = "first-last-frame" if use_lf else ("i2v" if has_ff else "t2v")
        why = ("hero shot" if shot.number in self.opts.hero else "override" if self._override(shot, "model") else "default")
        named = None if why == "override" else self.opts.defaulted.get("hero_model" if why == "hero shot" else "video_model")
        call = Call("generate_video", "video", task, model, roles, output=clip_path(shot.number),
                    soft={"aspect_ratio", "camera_fixed", "resolution"}, model_from=named, dialogue=shot.has_dialogue)
        mode = "first + last frame" if use_lf else "keyframe" if has_ff else "text only (no keyframe)"
        note = f"{why} model, {family} prompt, {mode}"
        deps = self.dep(ff) + (self.dep(lf) if use_lf else [])
        self.add(Step(f"clip:{shot.number:02d}", "clip", _const(call), [clip_path(shot.number)], deps, [shot.number], "video",
                      note=note), redo=shot.number in self.opts.redo)

    def _group(self, members: list[Shot]) -> None:
        names = list(dict.fromkeys(c for s in members for c in s.character_names))
        elements, deps = [], []
        for name in names:
            c = self.sb.character(name)
            if c is None:
                continue
            front = portrait_path(c.slug, "front")
            if not self.available(front):
                continue
            extra = [portrait_path(c.slug, v) for v in ("side", "back") if self.available(portrait_path(c.slug, v))]
            elements.append({"name": c.name, "frontal_image": front, "references": extra})
            deps += [d for r in (front, *extra) for d in self.dep(r)]
        shots = []
        present = {e["name"] for e in elements}
        for s in members:
            motion = s.motion.get("kling") or s.motion.get("seedance")
            text = motion.text if motion else (s.motion_text or f"Shot {s.id}")
            # Kling names speakers as [Name, tone]; name the elements too so they are tied to this shot
            who = [f"@{n}" for n in s.character_names if n in present and f"@{n}" not in text]
            text = f"{', '.join(who)}: {text}" if who else text
            shots.append(ShotIn(prompt=text, duration=max(3, round(s.duration_s or 5)), output=clip_path(s.number)))
        first_ff = frame_path(members[0].number, "first")
        image = first_ff if self.available(first_ff) else None
        key = f"group:{members[0].number:02d}-{members[-1].number:02d}"
        model, audio, why = self.opts.multi_model, self.opts.audio, self.opts.defaulted.get("multi_model")
        els = [ElementIn(**e) for e in elements]
        dialogue = any(s.has_dialogue for s in members)

        def make(state: Studio, planned: frozenset[str]) -> Call:
            call = multishot_call(state, shots, els, image=image, model=model, audio=audio, split=True,
                                  aspect_ratio=self._ratio(members[0]), planned=planned, model_from=why)
            call.dialogue = dialogue  # the storyboard's Audio tables say who speaks
            return call

        note = f"Kling multi-shot dialogue scene: shots {', '.join(s.id for s in members)} with {', '.join(names)}"
        targets = [clip_path(s.number) for s in members]
        deps += self.dep(first_ff)
        self.add(Step(key, "group", make, targets, list(dict.fromkeys(deps)), [s.number for s in members], "video",
                      note=note), redo=bool({s.number for s in members} & self.opts.redo))

    # ---------------------------------------------------------------- helpers

    def _characters(self) -> list[Any]:
        names = dict.fromkeys(n for s in self.shots for n in s.character_names)
        found = [self.sb.character(n) for n in names]
        return [c for c in found if c is not None]

    def _cap_refs(self, model: str, refs: list[str]) -> tuple[list[str], list[str]]:
        """At most as many references as the model's edit endpoint takes on its first route."""
        cap = ref_cap(resolve(model).model, "edit")
        if cap is None or len(refs) <= cap:
            return refs, []
        return refs[:cap], refs[cap:]

    def _ratio(self, shot: Shot) -> str:
        for m in shot.motion.values():
            if m.aspect_ratio:
                return m.aspect_ratio
        return self.opts.aspect_ratio

    def _override(self, shot: Shot, key: str) -> Any:
        return self.opts.overrides.get(shot.number, {}).get(key)

    def _snap_duration(self, model: str, task: str, seconds: float | None) -> float | None:
        """The model's allowed duration nearest to the shot's (a 6 s shot on a 5/10 s model becomes 5 s)."""
        if seconds is None:
            return None
        m = resolve(model).model
        e = next((e for e in m.endpoints if task in e.tasks), m.endpoints[0])
        p = next((p for p in {**m.params, **e.params}.values() if p.role == "duration"), None)
        if p is None or not p.values:
            return seconds
        allowed = [a for a in (_seconds(v) for v in p.values) if a is not None]
        if not allowed:
            return seconds
        return min(allowed, key=lambda a: (abs(a - seconds), -a))


def _seconds(v: Any) -> float | None:
    try:
        return float(str(v).rstrip("s"))
    except ValueError:
        return None  # "auto": the model picks the length
