"""The typed storyboard: what `load_storyboard()` returns, and the two plans the pipeline asks of it.

Every value is already stripped of Markdown decoration, except prompts and other quoted text, which
keep their wording, line breaks and language exactly as written. Line numbers are informational
(`compare=False`), so the same storyboard written two ways compares equal.

This module is data only: it imports none of the parsers (values.py) nor the ordering (order.py),
which import it. What needs parsing or ordering is worked out once by the reader and stored in a
field (`FramePlanEntry.parent_shot`, `Storyboard.keyframe_plan`); paths come from `aivp.layout`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .. import layout

FrameKind = layout.FrameKind


@dataclass(frozen=True)
class Problem:
    """Something in the upstream files the reader could not use as written."""

    file: str  # project-relative, POSIX
    line: int | None  # 1-based
    message: str  # what was expected, written as the fix

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass(frozen=True)
class Character:
    """`script/characters/<slug>.md`."""

    name: str
    slug: str
    file: str
    anchor: str | None  # the Prompt Anchor Phrase: put it verbatim in every prompt featuring the character
    sections: dict[str, str] = field(default_factory=dict)  # other sections, by lowercase title
    outfits: list[str] = field(default_factory=list)  # default outfit first (best effort)
    # Every lowercase spelling that names the character; set from name and slug, never passed in.
    aliases: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Computed here rather than by the reader so a Character built in code is found by name too.
        object.__setattr__(self, "aliases", character_aliases(self.name, self.slug))

    def portrait(self, angle: str = "front") -> str:
        """Where aivp-image keeps this character's portrait for `angle` (front/side/back)."""
        return layout.portrait_path(self.slug, angle)


def character_aliases(name: str, slug: str) -> frozenset[str]:
    """Every spelling that names a character: `Mara`, `mara`, the file slug, spaces as - or _ or nothing.

    Both `@mentions` in the storyboard (context.py) and `Storyboard.character()` look names up this way.
    """
    out: set[str] = set()
    for base in (name.lower(), slug.lower()):
        out |= {base, base.replace(" ", ""), base.replace(" ", "-"), base.replace(" ", "_"),
                base.replace("-", " "), base.replace("_", " "), base.replace("-", "").replace("_", "")}
    return frozenset(out)


@dataclass(frozen=True)
class Scene:
    """`script/scenes/<slug>.md`."""

    slug: str
    name: str
    file: str
    prompt: str | None  # the empty background, "No people"
    environment: str | None = None
    lighting: str | None = None
    atmosphere: str | None = None


@dataclass(frozen=True)
class ShotCharacter:
    """A row of a shot's `## Characters` table."""

    name: str  # the character's own name when script/characters/ has it, else as written (no @)
    first_frame_visible: bool = True
    last_frame_visible: bool = True
    angle: str | None = None  # front / side / back: which portrait to use as the reference
    facing: str | None = None


@dataclass(frozen=True)
class FrameRef:
    """One reference image named by a frame spec or a frame-plan entry."""

    kind: Literal["character", "scene", "frame", "other"]
    raw: str
    name: str | None = None  # character name or scene slug
    angle: str | None = None  # for characters: front / side / back
    shot: str | None = None  # for frames: the shot id, e.g. "1.2"
    frame: FrameKind | None = None  # for frames; None when the text does not say (treat as first)


@dataclass(frozen=True)
class FrameSpec:
    """`### Frame: first-frame` / `last-frame` under `## For aivp-image`."""

    kind: FrameKind
    mode: str  # "text-to-image" / "image-to-image" (inferred from the references when not written)
    references: list[FrameRef] = field(default_factory=list)
    prompt: str | None = None
    width: int | None = None
    height: int | None = None
    ratio: str | None = None  # "16:9"
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class MotionPrompt:
    """A fenced block under `## For aivp-video` and its clip parameters."""

    family: Literal["seedance", "kling"]
    text: str
    input_frames: Literal["first", "first+last"] | None = None
    duration_s: float | None = None
    aspect_ratio: str | None = None
    camera_fixed: bool | None = None


@dataclass(frozen=True)
class DialogueLine:
    speaker: str | None  # a character's name when it is one
    text: str
    tone: str | None = None  # "[Mara, low and steady]" gives "low and steady"


@dataclass(frozen=True)
class Shot:
    """`storyboard/storyboard-final/shots/shot-NN.md`."""

    number: int  # NN of the file name; clips and keyframes are named after it
    id: str  # "1.2" (scene 1, shot 2)
    title: str
    scene: str  # slug
    file: str
    camera: str | None = None  # as written: "cam_1 (MS, eye-level)"
    camera_id: str | None = None  # "cam_1"
    shot_type: str | None = None
    angle: str | None = None
    variation: str | None = None  # small / medium / large
    duration_s: float | None = None
    emotion: str | None = None
    is_primary: bool | None = None
    characters: list[ShotCharacter] = field(default_factory=list)
    first_frame_text: str | None = None
    last_frame_text: str | None = None
    motion_text: str | None = None
    audio: dict[str, str] = field(default_factory=dict)  # lowercase layer ("dialogue", "bgm", "sfx") -> text
    dialogue: list[DialogueLine] = field(default_factory=list)
    frames: dict[str, FrameSpec] = field(default_factory=dict)  # "first" / "last"
    motion: dict[str, MotionPrompt] = field(default_factory=dict)  # "seedance" / "kling"

    @property
    def needs_last_frame(self) -> bool:
        """A last keyframe is wanted: it has a spec, the variation is large, or a motion block asks for it."""
        return ("last" in self.frames or self.variation == "large"
                or any(m.input_frames == "first+last" for m in self.motion.values()))

    @property
    def has_dialogue(self) -> bool:
        return bool(self.dialogue)

    @property
    def character_names(self) -> list[str]:
        return [c.name for c in self.characters]

    @property
    def stem(self) -> str:
        return layout.shot_stem(self.number)

    def frame_path(self, kind: FrameKind) -> str:
        """The keyframe's conventional path, `image/frames/shot-NN-ff.png` or `-lf.png`."""
        return layout.frame_path(self.number, kind)

    @property
    def clip_path(self) -> str:
        return layout.clip_path(self.number)


@dataclass(frozen=True)
class FramePlanEntry:
    """`#### Frame <k> — Shot <id> first-frame` in frame-plan.md."""

    index: int  # k as written
    shot_id: str
    kind: FrameKind
    camera: str | None = None
    parent: str | None = None  # "cam_0 (Shot 1.1)"
    parent_shot: str | None = None  # the shot id named in **Parent** ("1.1"), found by the reader
    scene: str | None = None
    references: list[FrameRef] = field(default_factory=list)
    mode: str | None = None
    notes: str | None = None
    priority: int | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Storyboard:
    """A project's script and storyboard as data, plus every problem found reading it."""

    root: Path
    shots: list[Shot] = field(default_factory=list)  # by number
    characters: dict[str, Character] = field(default_factory=dict)  # by lowercase name
    scenes: dict[str, Scene] = field(default_factory=dict)  # by slug
    frame_plan: list[FramePlanEntry] = field(default_factory=list)  # generation order
    problems: list[Problem] = field(default_factory=list)
    project: str | None = None  # from "# Frame Generation Plan — <project>"
    # (shot number, kind) in generation order, worked out once by the reader (order.py); None when
    # the Storyboard was built in code without it (order.with_keyframe_order fills it in).
    keyframe_plan: list[tuple[int, FrameKind]] | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def shot(self, id_or_number: str | int) -> Shot | None:
        """A shot by id ("1.2"), number (3 or "3") or file stem ("shot-03"); None if there is none."""
        raw = str(id_or_number).strip().lower()
        # "shot-03" and "shot 3" name shot 3; "-1" names none (a sign is not stripped into another shot)
        key = raw.removeprefix("shot").strip(" -_") if raw.startswith("shot") else raw
        if isinstance(id_or_number, int) or key.isdigit():
            return next((s for s in self.shots if s.number == int(key)), None)
        return next((s for s in self.shots if s.id.lower() == key), None)

    def character(self, name: str) -> Character | None:
        """A character by name, @mention or file slug, case-insensitively; None if there is none."""
        wanted = name.strip().lstrip("@").strip().lower()
        return next((c for c in self.characters.values() if wanted in c.aliases), None)

    def scene(self, name: str) -> Scene | None:
        """A scene by slug or by its `# Scene:` name, case-insensitively; None if there is none."""
        wanted = name.strip().lower()
        return next((s for s in self.scenes.values() if wanted in (s.slug.lower(), s.name.lower())), None)

    def keyframe_order(self) -> list[tuple[Shot, FrameKind]]:
        """Every keyframe to generate, references before the frames that use them.

        The frame plan's order when it lists exactly the frames the shots need and never puts a
        frame before one it references; otherwise shot order (first before last), moved only as
        far as the references require. Raises ValueError for a Storyboard built in code without its
        `keyframe_plan` (pass it through `order.with_keyframe_order` first).
        """
        if self.keyframe_plan is None:
            raise ValueError("this Storyboard has no keyframe order: read it with load_storyboard(), or pass one "
                             "built in code through aivp.storyboard.order.with_keyframe_order()")
        by_number = {s.number: s for s in self.shots}
        return [(by_number[n], kind) for n, kind in self.keyframe_plan if n in by_number]

    def groups(self, max_shots: int = 6, max_total_s: float | None = None) -> list[list[Shot]]:
        """Runs of consecutive shots that suit one Kling O3 multi-shot call.

        A run is shots of one scene, each with dialogue and two or more characters; it never crosses
        a scene boundary or a shot that does not qualify. Runs longer than `max_shots` are split
        into near-equal parts; with `max_total_s` (Kling O3: 15) parts are split further so their
        durations fit. Parts of a single shot are left out (unless `max_shots` is 1): that shot is
        better made on its own.
        """
        if max_shots < 1:
            raise ValueError("max_shots must be at least 1")
        runs: list[list[Shot]] = []
        for shot in self.shots:
            if not (shot.has_dialogue and len(shot.characters) >= 2):
                runs.append([])
            elif runs and runs[-1] and runs[-1][-1].scene == shot.scene:
                runs[-1].append(shot)
            else:
                runs.append([shot])
        out: list[list[Shot]] = []
        for run in runs:
            parts = math.ceil(len(run) / max_shots)
            for i in range(parts):  # near-equal parts, the larger ones first
                chunk = run[-(-len(run) * i // parts) : -(-len(run) * (i + 1) // parts)]
                out += _fit_duration(chunk, max_total_s)
        smallest = min(2, max_shots)
        return [g for g in out if len(g) >= smallest]


def _fit_duration(shots: list[Shot], max_total_s: float | None) -> list[list[Shot]]:
    if max_total_s is None:
        return [shots] if shots else []
    out: list[list[Shot]] = []
    total = 0.0
    for shot in shots:
        d = shot.duration_s or 0.0
        if out and out[-1] and total + d <= max_total_s:
            out[-1].append(shot)
            total += d
        else:
            out.append([shot])
            total = d
    return out
