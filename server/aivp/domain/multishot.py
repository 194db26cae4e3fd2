"""A multi-shot call: several shots with their own prompts and durations in one Kling O3/V3 call.

Shot prompts may name character elements as @Name; aivp rewrites them to the @Element1, @Element2
... references Kling expects, in the order the elements are given, and reference images are
@Image1 ... . Every limit (shot count, per-shot and total seconds, element images, one video
element) comes from the catalog and is checked before anything is sent.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..catalog.routing import default_for
from ..errors import InvalidParameterError
from ..jobspec import ShotPart
from .prepare import Call, local_input
from .studio import Studio

ELEMENT_REF = re.compile(r"@(Element|Image)\d+\b")


class ShotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelled field is refused, not dropped
    prompt: str = Field(min_length=1, description="Action, dialogue in quotes, camera; @Name for elements.")
    duration: float = Field(gt=0, description="Whole seconds.")
    output: str | None = Field(default=None, description="split: this shot's clip path.")


class ElementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, description="@Name in prompts.")
    frontal_image: str | None = Field(default=None, description="Front view: path, URL or data: URI.")
    references: list[str] = Field(default=[], description="Up to 3 more views.")
    video: str | None = Field(default=None, description="Instead of images: a short video (one per call).")


def multishot_call(
    state: Studio,
    shots: list[ShotIn],
    elements: list[ElementIn],
    *,
    master_prompt: str | None = None,
    references: list[str] | None = None,
    image: str | None = None,
    end_image: str | None = None,
    model: str | None = None,
    aspect_ratio: str | None = None,
    audio: bool | None = None,
    negative_prompt: str | None = None,
    split: bool = False,
    output: str | None = None,
    overwrite: bool = False,
    options: dict[str, Any] | None = None,
    fresh: bool = False,
    provider: str | None = None,
    variations: dict[str, str] | None = None,
    planned: frozenset[str] = frozenset(),
    model_from: str | None = None,
) -> Call:
    """The generic call for a multi-shot clip (used by the tool and by the storyboard pipeline).

    With no elements given, characters mentioned as @Name become elements (their sheets), locations
    become reference images (@Image1 ...), and their descriptions go into the master prompt. `model_from` says
    where a `model` the caller did not name came from (the storyboard's default)."""
    default = default_for("multi-shot")[0].model.id  # routing's default, by model id: the task picks the endpoint
    images: dict[str, int] = {}
    given = {e.name.lstrip("@").lower() for e in elements}
    more, references, master_prompt, images = _from_assets(
        state, [master_prompt, *(s.prompt for s in shots)], list(references or []), master_prompt, variations, skip=given)
    elements = [*elements, *more]
    names = {e.name.lstrip("@").lower(): i for i, e in enumerate(elements, start=1)}
    if len(names) != len(elements):
        raise InvalidParameterError("Two elements share a name; give each character a different @Name.")
    prompts = [_rewrite(s.prompt, names, master_prompt, images) for s in shots]
    native_elements = [_element(state, e, planned) for e in elements]
    multi = [{"prompt": p, "duration": _seconds(s.duration)} for p, s in zip(prompts, shots, strict=True)]
    total = sum(float(m["duration"]) for m in multi)
    task = "reference-to-video" if (elements or references) else ("i2v" if image else "t2v")
    if task == "reference-to-video" and image and not references:
        from ..catalog import resolve

        tasks = {t for e in resolve(model or default).model.endpoints for t in e.tasks}
        if "reference-to-video" not in tasks:  # Kling V3 takes elements on its image-to-video endpoint
            task = "i2v"
    roles: dict[str, Any] = {
        "multi_prompt": multi, "elements": native_elements or None, "references": references,
        "start_image": image, "end_image": end_image, "duration": total, "aspect_ratio": aspect_ratio,
        "audio": audio, "negative_prompt": negative_prompt,
    }
    parts = [ShotPart(i, s.prompt, p, float(m["duration"]), s.output)
             for i, (s, p, m) in enumerate(zip(shots, prompts, multi, strict=True), start=1)]
    if any(s.output for s in shots) and not split:
        raise InvalidParameterError("Per-shot outputs are only written with split=true; set it or drop them.")
    for s in shots:  # checked now, not after the paid clip has come back
        if s.output:
            path = state.project.output_path(s.output)
            if path.suffix.lower() not in (".mp4", ".mov", ".m4v"):
                raise InvalidParameterError(f"Shot output {s.output!r} must be a .mp4, .mov or .m4v file.")
    return Call("multi_shot_video", "video", task, model or default, roles, options, output, overwrite, fresh,
                provider=provider, record={"elements": [e.name for e in elements]}, shots=parts, split=split,
                model_from=model_from if model else "the multi-shot default")


def _rewrite(prompt: str, names: dict[str, int], master: str | None, images: dict[str, int] | None = None) -> str:
    """@Name -> @ElementN, @location -> @ImageN; the master prompt goes first. Unknown @words stay as written."""
    images = images or {}

    def swap(m: re.Match[str]) -> str:
        if ELEMENT_REF.fullmatch(m.group(0)):
            return m.group(0)
        key = m.group(1).lower()
        if key in names:
            return f"@Element{names[key]}"
        if key in images:
            return f"@Image{images[key]}"
        return m.group(0)

    text = re.sub(r"@([^\s@,.;:!?\"'()\[\]]+)(?::[\w-]+)?", swap, prompt)
    return f"{master.strip()} {text}" if master and master.strip() else text


def _from_assets(state: Studio, texts: list[str | None], references: list[str], master: str | None,
                 variations: dict[str, str] | None, skip: frozenset[str] | set[str] = frozenset(),
                 ) -> tuple[list[ElementIn], list[str], str | None, dict[str, int]]:
    """Elements and reference images for the assets the shots mention (see mentions.py); names in `skip`
    are elements the caller gave."""
    from ..mentions import MENTION, mentioned

    elements: list[ElementIn] = []
    images: dict[str, int] = {}
    cast: list[str] = []
    texts = [MENTION.sub(lambda m: "" if m.group(1).lower() in skip else m.group(0), t or "") for t in texts]
    for name, asset, variation in mentioned(state.project, texts, variations):
        files = asset.images(state.project, variation)
        if not files:
            raise InvalidParameterError(
                f"@{name} has no {'sheet' if asset.kind == 'character' else 'plate'} for '{variation.name}' yet "
                f"({asset.image(variation)}); make it with make_asset_sheet, or pass elements yourself.")
        if asset.kind == "character":
            elements.append(ElementIn(name=name, frontal_image=files[0], references=files[1:4]))
        else:
            references.append(files[0])
            images[name.lower()] = len(references)
        cast.append(f"{asset.name}: {asset.text(variation)}")
    if cast:
        master = " ".join(x for x in (master, "Cast and places — " + "; ".join(cast) + ".") if x)
    return elements, references, master, images


def _seconds(value: float) -> str:
    if value != int(value):
        raise InvalidParameterError(f"Shot durations are whole seconds; {value:g} is not.")
    return str(int(value))


def _element(state: Studio, e: ElementIn, planned: frozenset[str] = frozenset()) -> dict[str, Any]:
    if e.video:
        if e.frontal_image or e.references:
            raise InvalidParameterError(f"Element @{e.name}: give either a video or images, not both.")
        return {"video_url": local_input(state, e.video, expect="video", what=f"@{e.name} video", planned=planned)}
    if not e.frontal_image:
        raise InvalidParameterError(f"Element @{e.name} needs a frontal_image (or a video).")
    front = local_input(state, e.frontal_image, expect="image", what=f"@{e.name} frontal image", planned=planned)
    refs = [local_input(state, r, expect="image", what=f"@{e.name} reference", planned=planned) for r in e.references]
    # Kling wants at least one reference image per element; the front view serves when none is given
    return {"frontal_image_url": front, "reference_image_urls": refs or [front]}
