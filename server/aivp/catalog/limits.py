"""The catalog limits no single parameter can express (references, shots, elements, pixels), checked
before anything is sent; each refusal names the nearest value that fits and the models that can do it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import InvalidParameterError
from .capable import limit_way_out, refs_way_out
from .schema import Limits

if TYPE_CHECKING:
    from .params import Built

SHOTS_TASK = "multi-shot"


def check_limits(b: Built, limits: Limits) -> None:
    refs = b.payload.get(b.role_field("references") or "", [])
    refs = refs if isinstance(refs, list) else [refs]
    model, kind, task = b.model.id, b.model.kind, b.endpoint.task
    if limits.max_refs is not None and len(refs) > limits.max_refs:
        raise InvalidParameterError(
            f"{b.label} takes at most {limits.max_refs} reference images; {len(refs)} were given. Drop "
            f"{len(refs) - limits.max_refs}, or pick another model. {refs_way_out(model, kind, task, len(refs))}")
    shots = b.payload.get(b.role_field("multi_prompt") or "", None)
    if isinstance(shots, list) and shots:
        _check_shots(b, limits, shots)
    elements = b.payload.get(b.role_field("elements") or "", None)
    if isinstance(elements, list) and elements:
        _check_elements(b, limits, elements, len(refs))
    size = b.payload.get(b.role_field("size") or "", None)
    if isinstance(size, dict) and "width" in size:
        w, h = size["width"], size["height"]
        pixels = w * h
        for bound, low in ((limits.min_pixels, True), (limits.max_pixels, False)):
            if bound is not None and (pixels < bound if low else pixels > bound):
                scale = math.sqrt(bound / pixels)
                step = math.ceil if low else math.floor
                near = f"{step(w * scale / 16) * 16}x{step(h * scale / 16) * 16}"
                raise InvalidParameterError(
                    f"{b.label}: {w}x{h} is {pixels:,} pixels; it {'needs at least' if low else 'takes at most'} "
                    f"{bound:,}. The nearest size of that shape: size='{near}'.")


def _check_shots(b: Built, limits: Limits, shots: list[object]) -> None:
    model, kind = b.model.id, b.model.kind
    if limits.max_shots is not None and len(shots) > limits.max_shots:
        more = limit_way_out(model, kind, SHOTS_TASK, "max_shots", len(shots), "{n} shots in one call")
        raise InvalidParameterError(f"{b.label} takes at most {limits.max_shots} shots in one call; {len(shots)} were "
                                    f"given. Merge shots or split them over two calls. {more}")
    total = 0.0
    for i, shot in enumerate(shots, start=1):
        raw = shot.get("duration", 5) if isinstance(shot, dict) else 5
        try:
            secs = float(str(raw).rstrip("s"))
        except ValueError:
            raise InvalidParameterError(f"{b.label}: shot {i} has duration {raw!r}; give seconds such as 5.") from None
        if limits.min_shot_s is not None and secs < limits.min_shot_s:
            more = limit_way_out(model, kind, SHOTS_TASK, "min_shot_s", secs, "{n} s shots", " s")
            raise InvalidParameterError(f"{b.label}: shot {i} is {secs:g} s; each shot needs at least "
                                        f"{limits.min_shot_s:g} s (duration={limits.min_shot_s:g}). {more}")
        if limits.max_shot_s is not None and secs > limits.max_shot_s:
            more = limit_way_out(model, kind, SHOTS_TASK, "max_shot_s", secs, "{n} s shots", " s")
            raise InvalidParameterError(f"{b.label}: shot {i} is {secs:g} s; a shot may last at most "
                                        f"{limits.max_shot_s:g} s (duration={limits.max_shot_s:g}). {more}")
        total += secs
    if limits.max_total_s is not None and total > limits.max_total_s:
        more = limit_way_out(model, kind, SHOTS_TASK, "max_total_s", total, "{n} s of shots in one call", " s")
        raise InvalidParameterError(
            f"{b.label}: the shots add up to {total:g} s; one call makes at most {limits.max_total_s:g} s. "
            f"Shorten shots by {total - limits.max_total_s:g} s or split them over two calls. {more}")


def _check_elements(b: Built, limits: Limits, elements: list[object], refs: int) -> None:
    model, kind, task = b.model.id, b.model.kind, b.endpoint.task
    if limits.max_elements is not None and len(elements) > limits.max_elements:
        more = limit_way_out(model, kind, task, "max_elements", len(elements), "{n} elements")
        raise InvalidParameterError(f"{b.label} takes at most {limits.max_elements} elements; {len(elements)} were "
                                    f"given. {more}")
    videos = 0
    for i, el in enumerate(elements, start=1):
        el = el if isinstance(el, dict) else {}
        extra = el.get("reference_image_urls") or []
        if limits.max_element_images is not None and len(extra) > limits.max_element_images:
            raise InvalidParameterError(
                f"{b.label}: element {i} has {len(extra)} reference images; at most {limits.max_element_images} "
                f"besides the frontal image. Keep the {limits.max_element_images} that show the most.")
        videos += 1 if el.get("video_url") else 0
    if limits.max_video_elements is not None and videos > limits.max_video_elements:
        more = limit_way_out(model, kind, task, "max_video_elements", videos, "{n} video elements")
        raise InvalidParameterError(f"{b.label} takes at most {limits.max_video_elements} video element(s); {videos} "
                                    f"were given. Give the others as images. {more}")
    if videos and limits.max_refs_with_video is not None and len(elements) + refs > limits.max_refs_with_video:
        raise InvalidParameterError(
            f"{b.label}: with a video element, elements and reference images together may be at most "
            f"{limits.max_refs_with_video}; {len(elements) + refs} were given. Drop "
            f"{len(elements) + refs - limits.max_refs_with_video}, or give the video element as images.")
