"""Keyframe generation order: every frame after the frames it references.

A frame depends on its shot's first frame (if it is a last frame), on every `Shot <id> <kind>-frame`
among its references (in the shot file and in the frame plan) and on its plan entry's **Parent**.
The frame plan supplies the order when it is consistent: it lists exactly the frames the shots
need, once each, and never a frame before one it depends on. Otherwise the order is shot order,
first before last, with a frame moved later only as far as its dependencies require.

The reader works the order out once and stores it as `Storyboard.keyframe_plan`; model.py does not
import this module, so the data classes stay free of the ordering rules.
"""

from __future__ import annotations

import heapq
from dataclasses import replace

from .model import FrameKind, FramePlanEntry, Shot, Storyboard

Key = tuple[int, str]  # (shot number, "first" | "last")


def with_keyframe_order(sb: Storyboard) -> Storyboard:
    """`sb` with its `keyframe_plan` worked out from its shots and frame plan: for a Storyboard built in
    code (load_storyboard fills it in itself), so that `sb.keyframe_order()` can answer."""
    return replace(sb, keyframe_plan=plan_numbers(keyframe_order(sb.shots, sb.frame_plan)[0]))


def plan_numbers(order: list[tuple[Shot, FrameKind]]) -> list[tuple[int, FrameKind]]:
    """The order as `Storyboard.keyframe_plan` stores it: (shot number, kind)."""
    return [(shot.number, kind) for shot, kind in order]


def keyframe_order(
    shots: list[Shot], plan: list[FramePlanEntry]
) -> tuple[list[tuple[Shot, FrameKind]], list[tuple[int | None, str]]]:
    """The order, and (line, message) notes for frame-plan.md explaining why its order was not used."""
    by_number = {s.number: s for s in shots}
    by_id: dict[str, Shot] = {}
    for s in shots:
        by_id.setdefault(s.id, s)
    nodes: list[Key] = []
    for s in shots:
        nodes.append((s.number, "first"))
        if s.needs_last_frame:
            nodes.append((s.number, "last"))
    node_set = set(nodes)
    deps = _dependencies(shots, plan, by_id, node_set)

    notes: list[tuple[int | None, str]] = []
    preferred = nodes
    if plan:
        planned: list[Key] = [(by_id[e.shot_id].number, e.kind) for e in plan if e.shot_id in by_id]
        position = {k: i for i, k in enumerate(planned)}
        missing = [k for k in nodes if k not in position]
        extra = [e for e in plan if e.shot_id in by_id and (by_id[e.shot_id].number, e.kind) not in node_set]
        early = [(e, d) for e in plan if e.shot_id in by_id and (key := (by_id[e.shot_id].number, e.kind)) in deps
                 for d in sorted(deps[key]) if d in position and position[d] > position[key]]
        for k in missing:
            notes.append((None, f"no entry for Shot {by_number[k[0]].id} {k[1]}-frame; keyframes follow shot order instead"))
        for e in extra:
            notes.append((e.line, f"Shot {e.shot_id} has no last-frame spec and is not variation large, so its "
                                  f"{e.kind}-frame is not needed; keyframes follow shot order instead"))
        for e, d in early:
            notes.append((e.line, f"Shot {e.shot_id} {e.kind}-frame comes before Shot {by_number[d[0]].id} {d[1]}-frame, "
                                  "which it references; keyframes follow shot order instead"))
        if len(planned) == len(plan) and not (missing or extra or early):
            preferred = planned

    rank = {k: i for i, k in enumerate(preferred)}
    waiting = {k: {d for d in deps.get(k, set()) if d != k} for k in nodes}
    users: dict[Key, list[Key]] = {}
    for k, ds in waiting.items():
        for d in ds:
            users.setdefault(d, []).append(k)
    ready = [(rank[k], k) for k in nodes if not waiting[k]]
    heapq.heapify(ready)
    order: list[Key] = []
    while ready:
        _, k = heapq.heappop(ready)
        order.append(k)
        for u in users.get(k, []):
            waiting[u].discard(k)
            if not waiting[u]:
                heapq.heappush(ready, (rank[u], u))
    if len(order) < len(nodes):  # a cycle: keep the rest in the preferred order
        stuck = sorted((k for k in nodes if k not in set(order)), key=rank.__getitem__)
        notes.append((None, "these frames reference each other in a cycle: "
                            + ", ".join(f"Shot {by_number[k[0]].id} {k[1]}-frame" for k in stuck)
                            + "; remove one of the references"))
        order += stuck
    return [(by_number[n], kind) for n, kind in order], notes  # type: ignore[misc]


def _dependencies(shots: list[Shot], plan: list[FramePlanEntry], by_id: dict[str, Shot], nodes: set[Key]) -> dict[Key, set[Key]]:
    deps: dict[Key, set[Key]] = {}

    def add(key: Key, shot_id: str | None, kind: str | None) -> None:
        target = by_id.get(shot_id or "")
        if target is not None and key in nodes and (target.number, kind or "first") in nodes:
            deps.setdefault(key, set()).add((target.number, kind or "first"))

    for s in shots:
        if s.needs_last_frame:
            deps.setdefault((s.number, "last"), set()).add((s.number, "first"))
        for kind, spec in s.frames.items():
            for ref in spec.references:
                if ref.kind == "frame":
                    add((s.number, kind), ref.shot, ref.frame)
    for e in plan:
        if e.shot_id not in by_id:
            continue
        key = (by_id[e.shot_id].number, e.kind)
        add(key, e.parent_shot, "first")
        for ref in e.references:
            if ref.kind == "frame":
                add(key, ref.shot, ref.frame)
    return deps
