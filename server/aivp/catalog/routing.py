"""Which model runs a call when the caller leaves the choice to aivp.

The defaults follow the seeds: Nano Banana Pro for keyframes and edits (best all-round), Seedance
1.5 Pro for clips (best value with native audio), AuraSR to upscale, FLUX dev for strength-guided
restyles and masked inpainting, Kling O3 for reference-to-video and multi-shot. They are written as
provider endpoint ids, which stay stable whatever the catalog calls the model.
"""

from __future__ import annotations

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
    "t2v": "fal-ai/bytedance/seedance/v1.5/pro/text-to-video",
    "i2v": "fal-ai/bytedance/seedance/v1.5/pro/image-to-video",
    "first-last-frame": "fal-ai/bytedance/seedance/v1.5/pro/image-to-video",
    "reference-to-video": "fal-ai/kling-video/o3/standard/reference-to-video",
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
    candidates = [m for m in catalog().models if any(real_task in e.tasks for e in m.endpoints)]
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
        found = resolve(default_image)
        return found, f"{found.model.id} is this project's image default (AIVP_IMAGE_MODEL)"
    if byteplus_ready:
        found = resolve("seedream")
        return found, "seedream-4.5 on BytePlus is the default while ARK_API_KEY is set (cheapest, up to 14 references)"
    return None


def tasks_of(model: Model) -> list[str]:
    return sorted({t for e in model.endpoints for t in e.tasks})
