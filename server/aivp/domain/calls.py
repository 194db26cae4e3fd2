"""The generic call each generation tool makes, as plain functions (batch_generate reuses them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .prepare import Call

EDIT_TASKS = {"edit": "edit", "inpaint": "inpaint", "upscale": "upscale", "restyle": "i2i",
              "remove_background": "remove-background"}


def image_call(*, prompt: str, model: str | None = None, references: list[str] | None = None,
               aspect_ratio: str | None = None, size: str | None = None, num_images: int = 1, seed: int | None = None,
               negative_prompt: str | None = None, output: str | None = None, overwrite: bool = False,
               options: dict[str, Any] | None = None, fresh: bool = False, provider: str | None = None,
               variations: dict[str, str] | None = None, tier: str | None = None,
               consistency: str | None = None, max_cost_usd: float | None = None) -> Call:
    return Call("generate_image", "image", "edit" if references else "t2i", model, {
        "prompt": prompt, "references": references, "aspect_ratio": aspect_ratio, "size": size,
        "num_images": num_images if num_images != 1 else None, "seed": seed, "negative_prompt": negative_prompt,
    }, options, output, overwrite, fresh, provider=provider, variations=variations, tier=tier, consistency=consistency,
        max_cost_usd=max_cost_usd)


def edit_call(*, image: str, prompt: str | None = None, operation: str = "edit", mask: str | None = None,
              references: list[str] | None = None, strength: float | None = None, upscale_factor: float | None = None,
              model: str | None = None, aspect_ratio: str | None = None, size: str | None = None, num_images: int = 1,
              seed: int | None = None, negative_prompt: str | None = None, output: str | None = None,
              overwrite: bool = False, options: dict[str, Any] | None = None, fresh: bool = False,
              provider: str | None = None, variations: dict[str, str] | None = None,
              max_cost_usd: float | None = None) -> Call:
    if operation not in EDIT_TASKS:
        from ..errors import InvalidParameterError

        raise InvalidParameterError(f"operation must be one of {', '.join(EDIT_TASKS)}, not {operation!r}.")
    if operation == "remove_background" and not prompt:
        prompt = "Remove the background completely; keep the subject unchanged on a plain white background."
    return Call("edit_image", "image", EDIT_TASKS[operation], model, {
        "prompt": prompt, "image": image, "mask": mask, "references": references, "strength": strength,
        "upscale_factor": upscale_factor, "aspect_ratio": aspect_ratio, "size": size,
        "num_images": num_images if num_images != 1 else None, "seed": seed, "negative_prompt": negative_prompt,
    }, options, output, overwrite, fresh, provider=provider, variations=variations, max_cost_usd=max_cost_usd)


def video_call(*, prompt: str, model: str | None = None, image: str | None = None, end_image: str | None = None,
               references: list[str] | None = None, video: str | None = None, duration: float | None = None,
               aspect_ratio: str | None = None, resolution: str | None = None, audio: bool | None = None,
               camera_fixed: bool | None = None, seed: int | None = None, negative_prompt: str | None = None,
               output: str | None = None, overwrite: bool = False, options: dict[str, Any] | None = None,
               fresh: bool = False, provider: str | None = None, variations: dict[str, str] | None = None,
               max_cost_usd: float | None = None) -> Call:
    if video:
        task = "v2v"
    elif image and end_image:
        task = "first-last-frame"
    elif image:
        task = "i2v"
    elif references:
        task = "reference-to-video"
    else:
        task = "t2v"
    return Call("generate_video", "video", task, model, {
        # with a source video, `image` is a reference picture (e.g. motion control), not a start frame
        "prompt": prompt, "start_image": None if video else image, "image": image if video else None,
        "end_image": end_image, "references": references, "video": video, "duration": duration,
        "aspect_ratio": aspect_ratio, "resolution": resolution, "audio": audio, "camera_fixed": camera_fixed,
        "seed": seed, "negative_prompt": negative_prompt,
    }, options, output, overwrite, fresh, provider=provider, variations=variations, max_cost_usd=max_cost_usd)


CALLS: dict[str, Callable[..., Call]] = {"generate_image": image_call, "edit_image": edit_call, "generate_video": video_call}
