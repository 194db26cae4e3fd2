"""From a tool's arguments to a checked JobRequest: model, endpoint, route, inputs, payload, cost.

Nothing here sends anything or spends money; every refusal happens here or in the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ..catalog import Resolved, resolve
from ..catalog.params import Built, build, choose_endpoint
from ..catalog.pricing import estimate_call
from ..catalog.routing import TASK_OF, default_for
from ..catalog.schema import Endpoint, Route
from ..errors import InvalidParameterError
from ..inputs import InputRef, resolve_input
from ..jobs import JobRequest
from .common import AppState

IMAGE_ROLES = ("image", "start_image", "end_image", "mask")
MODES = {"t2i": "T2I", "i2i": "I2I", "edit": "EDIT", "inpaint": "INPAINT", "upscale": "UPSCALE", "t2v": "T2V",
         "i2v": "I2V", "first-last-frame": "FLF", "reference-to-video": "R2V", "v2v": "V2V", "multi-shot": "MULTI"}
CONVENTION_TYPES = {"image/characters/": "character", "image/frames/": "keyframe", "image/locations/": "location",
                    "image/styles/": "style", "image/candidates/": "candidate", "video/clips/": "clip"}


@dataclass
class Call:
    """What a generation tool was asked for, in generic terms."""

    tool: str
    kind: str  # image | video
    task: str
    model: str | None
    roles: dict[str, Any]
    options: dict[str, Any] | None = None
    output: str | None = None
    overwrite: bool = False
    fresh: bool = False
    soft: set[str] = field(default_factory=set)


def pick(call: Call) -> tuple[Resolved, str]:
    """The model and endpoint for a call, and the reason, in words."""
    if call.model:
        found = resolve(call.model)
        return found, f"{found.model.id} as requested"
    return default_for(call.task)


def prepare(state: AppState, call: Call, *, dry_run: bool = False) -> tuple[JobRequest, str]:
    found, why = pick(call)
    model = found.model
    task = TASK_OF.get(call.task, call.task)
    endpoint: Endpoint = found.endpoint or choose_endpoint(model, task)
    route = found.route or _route(state, endpoint, model.id)
    if not dry_run:  # an estimate needs no key
        state.runner.providers[route.provider].check_ready()
    roles = dict(call.roles)
    limit = state.settings.max_upload_bytes
    for role in IMAGE_ROLES:
        if isinstance(roles.get(role), str):
            roles[role] = resolve_input(state.project, roles[role], expect="image", max_bytes=limit, what=role.replace("_", " "))
    if isinstance(roles.get("video"), str):
        roles["video"] = resolve_input(state.project, roles["video"], expect="video", max_bytes=limit, what="video")
    if roles.get("references"):
        roles["references"] = [resolve_input(state.project, r, expect="image", max_bytes=limit, what="reference image")
                               for r in roles["references"]]
    targets = None
    soft = set(call.soft)
    if call.output:
        target = state.project.output_path(call.output)
        targets = [state.project.rel(target)]
        ext = PurePosixPath(targets[0]).suffix.lower().lstrip(".")
        if ext in ("png", "jpg", "jpeg", "webp") and roles.get("output_format") is None:
            roles["output_format"] = "jpeg" if ext == "jpg" else ext
            soft.add("output_format")
    built = _build_fitting(model, endpoint, route, roles, call.options, soft)
    est = estimate_call(model, endpoint, route, built.effective)
    req = JobRequest(
        tool=call.tool, built=built, kind=call.kind, mode=MODES.get(endpoint.task if found.endpoint else task, task.upper()),
        prompt=roles.get("prompt"), estimate=est, targets=targets, overwrite=call.overwrite, fresh=call.fresh,
        record_type=_record_type(targets, call.kind), plan_type=_plan_type(targets), extra=_extra(roles),
    )
    return req, why


def _build_fitting(model: Any, endpoint: Endpoint, route: Route, roles: dict[str, Any],
                   options: dict[str, Any] | None, soft: set[str]) -> Built:
    """Build; if a soft default (like output_format from the file name) does not fit the model, drop it."""
    try:
        return build(model, endpoint, route, roles, options, soft=soft)
    except InvalidParameterError:
        dropped = {k: v for k, v in roles.items() if k not in soft}
        if dropped == roles:
            raise
        return build(model, endpoint, route, dropped, options, soft=soft)


def _route(state: AppState, endpoint: Endpoint, model_id: str) -> Route:
    available = state.runner.providers
    for r in endpoint.routes:
        if r.provider in available:
            return r
    have = ", ".join(sorted({r.provider for r in endpoint.routes}))
    raise InvalidParameterError(
        f"{model_id} ({endpoint.task}) is served by {have}, which this build of aivp cannot call yet; "
        "pick a fal model with search_models."
    )


def _record_type(targets: list[str] | None, kind: str) -> str:
    if targets:
        for prefix, kind_name in CONVENTION_TYPES.items():
            if targets[0].startswith(prefix):
                return kind_name
    return "clip" if kind == "video" else "image"


def _plan_type(targets: list[str] | None) -> str | None:
    if not targets:
        return None
    stem = PurePosixPath(targets[0]).stem
    return stem if targets[0].startswith(tuple(CONVENTION_TYPES)) else None


def _extra(roles: dict[str, Any]) -> dict[str, Any]:
    def show(v: Any) -> Any:
        return v.short() if isinstance(v, InputRef) else v

    refs = [show(r) for r in roles.get("references") or []]
    extra: dict[str, Any] = {
        "input_image": show(roles.get("start_image") or roles.get("image")),
        "end_image": show(roles.get("end_image")),
        "mask": show(roles.get("mask")),
        "references": refs,
        "character_refs": [r for r in refs if isinstance(r, str) and r.startswith("image/characters/")],
    }
    return {k: v for k, v in extra.items() if v not in (None, [])}
