"""Which model runs a call when the caller leaves the choice to aivp.

The defaults follow the seeds: Nano Banana Pro for keyframes and edits (best all-round), Seedance
2.0 for clips (native audio, start and end frames, references; the aivp-video seed makes it the
default once it is on fal, which it is since 2026), AuraSR to upscale, FLUX dev for strength-guided
restyles and masked inpainting, Kling O3 for video-to-video and multi-shot. They are written as
provider endpoint ids, which stay stable whatever the catalog calls the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import Resolved, catalog, resolve
from .pricing import typical
from .schema import Model

DEFAULTS: dict[str, str] = {
    "t2i": "fal-ai/nano-banana-pro",
    "edit": "fal-ai/nano-banana-pro/edit",
    "i2i": "fal-ai/flux/dev/image-to-image",
    "inpaint": "fal-ai/flux/dev/inpainting",
    "upscale": "fal-ai/aura-sr",
    "remove-background": "fal-ai/bria/fibo-edit",
    "t2v": "bytedance/seedance-2.0/text-to-video",
    "i2v": "bytedance/seedance-2.0/image-to-video",
    "first-last-frame": "bytedance/seedance-2.0/image-to-video",
    "reference-to-video": "bytedance/seedance-2.0/reference-to-video",
    "v2v": "fal-ai/kling-video/o3/standard/video-to-video/edit",
    "multi-shot": "fal-ai/kling-video/o3/pro/text-to-video",
}
TASK_OF = {"remove-background": "edit"}

# The fal + Seedream image router (seeds/003): "fal" means fal's own routing, Nano Banana Pro's edit
# endpoint when there are references and FLUX.2 pro when there are none; with no model named and a
# BytePlus key present, Seedream 4.5 on BytePlus is the default (5x cheaper, up to 14 references).
FAL_ROUTING = {"t2i": "fal-ai/flux-2-pro", "edit": "fal-ai/nano-banana-pro/edit"}
IMAGE_TASKS = ("t2i", "edit")


def default_for(task: str) -> tuple[Resolved, str]:
    """The default model for a task and why it was chosen."""
    wanted = DEFAULTS.get(task)
    real_task = TASK_OF.get(task, task)
    if wanted:
        try:
            found = resolve(wanted)
            return found, f"{found.model.id} is aivp's default for {task}"
        except KeyError:
            pass
    candidates = [m for m in catalog().models if m.active and any(real_task in e.tasks for e in m.endpoints)]
    if not candidates:
        from ..errors import InvalidParameterError

        raise InvalidParameterError(f"No model in the catalog does {task}.")
    best = min(candidates, key=lambda m: (-m.quality, typical(m).usd))
    return Resolved(best), f"{best.id} is the best-rated model in the catalog for {task}"


def image_router(name: str | None, task: str, *, default_image: str | None, byteplus_ready: bool) -> tuple[Resolved, str] | None:
    """The router's choice for an image call, or None when the ordinary rules apply."""
    if task not in IMAGE_TASKS:
        return None
    if name is not None and name.strip().lower() == "fal":
        found = resolve(FAL_ROUTING[task])
        return found, f"{found.model.id}: fal routing ({'references given' if task == 'edit' else 'no references'})"
    if name is not None:
        return None
    if default_image:
        if default_image.strip().lower() == "fal":
            found = resolve(FAL_ROUTING[task])
            return found, f"{found.model.id}: fal routing (AIVP_IMAGE_MODEL=fal)"
        found = resolve(default_image)
        return found, f"{found.model.id} is this project's image default (AIVP_IMAGE_MODEL)"
    if byteplus_ready:
        found = resolve("seedream")
        return found, "seedream-4.5 on BytePlus is the default while ARK_API_KEY is set (cheapest, up to 14 references)"
    return None


def tasks_of(model: Model) -> list[str]:
    return sorted({t for e in model.endpoints for t in e.tasks})


# ---------------------------------------------------------------- choosing for the caller

CONSISTENCY_RANK = {"none": 0, "weak": 1, "medium": 2, "strong": 3}
TEXT_WORDS = re.compile(r"\b(reads?|reading|says?|saying|text|title|logo|sign|signage|poster|banner|label|headline|"
                        r"caption|lettering|typography|written|words?)\b", re.IGNORECASE)
QUOTED = re.compile(r"[\"“«]([^\"”»]{2,80})[\"”»]")


@dataclass
class Wants:
    """What a call needs from a model it left to aivp."""

    task: str
    refs: int = 0
    prompt: str = ""
    consistency: str | None = None
    tier: str | None = None
    configured: str | None = None  # the project's model for this task (aivp.toml [models])
    image_default: str | None = None  # AIVP_IMAGE_MODEL
    byteplus_ready: bool = False
    source_in_refs: bool = False  # an edited image that shares the reference list (edit_image)


def wants_text(prompt: str) -> bool:
    """Text to render in the image: a quoted phrase and a word that says it is lettering."""
    return bool(QUOTED.search(prompt) and TEXT_WORDS.search(prompt))


def ref_cap(model: Model, task: str, source_in_refs: bool = False) -> int | None:
    """How many reference images the model takes for a task (None: no stated limit; 0: none).

    With `source_in_refs` the image being edited takes one place of the list, on models whose only
    image input is that list (Nano Banana Pro edit, FLUX.2 edit, Seedream)."""
    endpoint = next((e for e in model.endpoints if task in e.tasks), None)
    if endpoint is None:
        return 0
    params = {**model.params, **endpoint.params, **endpoint.routes[0].params}
    refs = next((p for p in params.values() if p.role == "references"), None)
    if refs is None:
        return 0
    limits = endpoint.limits or model.limits
    caps = [c for c in (limits.max_refs, refs.max_items) if c is not None]
    has_image = any(p.role == "image" for p in params.values())
    cap = min(caps) if caps else None
    if cap is not None and source_in_refs and not has_image:
        cap -= 1  # the edited image rides in the same list
    return cap


def choose(w: Wants) -> tuple[Resolved, str]:
    """The model for a call that named none, and why: the seeds' routing rules, in order."""
    if w.configured:
        routed = image_router("fal", w.task, default_image=None, byteplus_ready=False) if w.configured == "fal" else None
        found, why = routed or (resolve(w.configured), f"{w.configured} is this project's default for {w.task} (aivp.toml)")
    elif w.consistency or w.tier:
        found, why = cheapest(w.task, w.consistency, w.tier, w.refs, w.source_in_refs)
    elif w.task == "t2i" and wants_text(w.prompt):
        found = resolve("ideogram-v3")
        why = "ideogram-v3 because the prompt has text to render (the text specialist)"
    else:
        found, why = image_router(None, w.task, default_image=w.image_default, byteplus_ready=w.byteplus_ready) or \
            default_for(w.task)
    cap = ref_cap(found.model, w.task, w.source_in_refs)
    if w.refs and cap is not None and cap < w.refs and not w.configured:
        more = fits_refs(w.task, w.refs, w.source_in_refs)
        if more is not None:
            return more, f"{more.model.id}: it takes the {w.refs} reference images ({found.model.id} takes {cap})"
    return found, why


def cheapest(task: str, consistency: str | None, tier: str | None, refs: int = 0,
             source_in_refs: bool = False) -> tuple[Resolved, str]:
    """The cheapest model (typical call) doing the task at this consistency level and tier."""
    need = CONSISTENCY_RANK.get(consistency or "none", 0)
    fits = []
    for m in catalog().models:
        if not m.active or not any(task in e.tasks for e in m.endpoints):
            continue
        if CONSISTENCY_RANK[m.consistency] < need or (tier and m.tier != tier):
            continue
        cap = ref_cap(m, task, source_in_refs)
        if refs and cap is not None and cap < refs:
            continue
        fits.append((typical(m).usd, -m.quality, m.id, m))
    if not fits:
        raise _none_meets(task, consistency, tier, refs)
    cost, _, _, m = min(fits)
    said = " and ".join(x for x in (f"consistency {consistency}+" if consistency else "", f"tier {tier}" if tier else "") if x)
    return Resolved(m), f"{m.id} is the cheapest model for {task} with {said} (~${cost:.3f} a typical call)"


def fits_refs(task: str, refs: int, source_in_refs: bool = False) -> Resolved | None:
    """The best-rated model doing the task that takes that many references (cheapest among equals)."""
    def takes(m: Model) -> bool:
        cap = ref_cap(m, task, source_in_refs)
        return cap is None or cap >= refs

    found = [(-m.quality, typical(m).usd, m.id, m) for m in catalog().models
             if m.active and any(task in e.tasks for e in m.endpoints) and takes(m)]
    return Resolved(min(found)[3]) if found else None


def _none_meets(task: str, consistency: str | None, tier: str | None, refs: int) -> Exception:
    from ..errors import InvalidParameterError

    near = sorted({f"{m.id} ({m.tier}, {m.consistency})" for m in catalog().models
                   if m.active and any(task in e.tasks for e in m.endpoints)})
    return InvalidParameterError(
        f"No model does {task} with consistency {consistency or 'any'} and tier {tier or 'any'}"
        f"{f' and {refs} references' if refs else ''}. Models for {task}: {', '.join(near)}.")
