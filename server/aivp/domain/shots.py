"""What a storyboard says about one keyframe: its prompt, with the characters' anchors, and its references.

Shared by the storyboard pipeline (planning every keyframe) and keyframe candidates (one frame, on
demand), so both ask a model for the same picture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..layout import frame_path, location_path, portrait_path

if TYPE_CHECKING:  # the storyboard reader is imported when a storyboard is read, not at server start
    from ..storyboard import Shot, Storyboard

PORTRAIT_VIEWS = ("front", "side", "back")


def frame_prompt(sb: Storyboard, shot: Shot, kind: str) -> str:
    """The frame's own prompt, else the shot's frame text, else its motion text; anchors added."""
    spec = shot.frames.get(kind)
    text = (spec.prompt if spec else None) or (shot.first_frame_text if kind == "first" else shot.last_frame_text) \
        or shot.motion_text
    return with_anchors(sb, text or f"Shot {shot.id}", shot, kind)


def frame_refs(sb: Storyboard, shot: Shot, kind: str, available: Callable[[str], bool]) -> tuple[list[str], str]:
    """References in priority order: characters (by facing), the scene, the shot's own first frame,
    explicit frame references, prior frames of the same camera, the parent camera's frame."""
    refs: list[str] = []
    why: list[str] = []
    for sc in shot.characters:
        visible = sc.first_frame_visible if kind == "first" else sc.last_frame_visible
        c = sb.character(sc.name)
        if not visible or c is None:
            continue
        view = sc.angle if sc.angle in PORTRAIT_VIEWS else "front"
        path = portrait_path(c.slug, view)
        if not available(path):
            path = portrait_path(c.slug, "front")
        if available(path):
            refs.append(path)
            why.append(f"{c.name} ({view})")
    if shot.scene and available(location_path(shot.scene)):
        refs.append(location_path(shot.scene))
        why.append(f"scene {shot.scene}")
    if kind == "last" and available(frame_path(shot.number, "first")):
        refs.append(frame_path(shot.number, "first"))
        why.append("its first frame")
    spec = shot.frames.get(kind)
    for r in spec.references if spec else []:
        if r.kind == "frame" and r.shot:
            other = sb.shot(r.shot)
            if other is not None and other.number != shot.number:
                path = frame_path(other.number, r.frame or "first")
                if available(path) and path not in refs:
                    refs.append(path)
                    why.append(f"shot {other.id} {r.frame or 'first'} frame")
    earlier = [s for s in sb.shots if s.number < shot.number and s.camera_id and s.camera_id == shot.camera_id]
    if earlier and available(frame_path(earlier[-1].number, "first")):
        path = frame_path(earlier[-1].number, "first")
        if path not in refs:
            refs.append(path)
            why.append(f"prior frame of {shot.camera_id} (shot {earlier[-1].id})")
    parent = next((e.parent for e in sb.frame_plan if e.shot_id == shot.id and e.kind == kind and e.parent), None)
    if parent:
        pshot = next((s for s in sb.shots if s.id != shot.id and s.id in parent), None)
        if pshot is not None and available(frame_path(pshot.number, "first")):
            path = frame_path(pshot.number, "first")
            if path not in refs:
                refs.append(path)
                why.append(f"parent camera frame (shot {pshot.id})")
    return refs, "references: " + (", ".join(why) if why else "none")


def with_anchors(sb: Storyboard, prompt: str, shot: Shot, kind: str) -> str:
    """Each visible character's anchor phrase, word for word, unless the prompt has it already."""
    extra = []
    for sc in shot.characters:
        visible = sc.first_frame_visible if kind == "first" else sc.last_frame_visible
        c = sb.character(sc.name)
        if visible and c is not None and c.anchor and c.anchor not in prompt:
            extra.append(c.anchor)
    return prompt if not extra else f"{prompt}\n\n" + "\n".join(extra)
