"""Read a project's upstream Markdown (script and storyboard) into typed data for the video pipeline.

    from aivp.storyboard import load_storyboard
    sb = load_storyboard(project_root)
    sb.problems            # every part that could not be used, as Problem(file, line, message)
    sb.keyframe_order()    # [(Shot, "first" | "last"), ...] references before the frames using them
    sb.groups()            # candidate runs of shots for one Kling O3 multi-shot call
    sb.shot("1.2"), sb.shot(3), sb.character("@mara")   # None when there is no such thing

Modules: `markdown` (sections, tables, blockquotes, fences, fields, with line numbers), `values`
(single values: durations, sizes, references, dialogue), `shots` and `frameplan` (one file each),
`context` (problems and known names while reading), `reader` (the folder), `order` (keyframe
order), `model` (the dataclasses).
"""

from pathlib import Path

from .model import (
    Character,
    DialogueLine,
    FrameKind,
    FramePlanEntry,
    FrameRef,
    FrameSpec,
    MotionPrompt,
    Problem,
    Scene,
    Shot,
    ShotCharacter,
    Storyboard,
)
from .reader import load_storyboard

__all__ = [
    "Character",
    "DialogueLine",
    "FrameKind",
    "FramePlanEntry",
    "FrameRef",
    "FrameSpec",
    "MotionPrompt",
    "Problem",
    "Scene",
    "Shot",
    "ShotCharacter",
    "Storyboard",
    "load_storyboard",
    "sample_path",
]


def sample_path(name: str = "lighthouse") -> Path:
    """The folder of a sample project shipped with the package (copy it before writing into it)."""
    return Path(__file__).resolve().parent.parent / "samples" / name
