"""From a generic call to a checked JobRequest: model, endpoint, route, inputs, payload, cost.

Nothing here sends anything or spends money; every refusal happens here or in the catalog. The
tools, the storyboard pipeline, batches and asset sheets all come through `prepare`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from .. import layout
from ..catalog import Resolved, effective_params, lookup, resolve
from ..catalog.params import Built, build, choose_endpoint
from ..catalog.pricing import Estimate, estimate_call
from ..catalog.routing import TASK_OF, Wants, choose, default_for, image_router, ref_cap
from ..catalog.schema import Endpoint, Param, Route
from ..errors import BudgetExceeded, InvalidParameterError, MissingKeyError, RetiredModelError
from ..inputs import Expect, InputRef, iter_inputs, resolve_input
from ..jobs import JobRequest
from ..jobspec import ShotPart
from ..mentions import Expansion, drop_to, expand
from ..project_config import ProjectConfig, load_config
from ..providers import PROVIDER_NAMES, key_help
from .dialogue import audio_note, voice_dialogue
from .studio import Studio

IMAGE_ROLES = ("image", "start_image", "end_image", "mask")
IMAGE_EXTS = {"png", "jpg", "jpeg", "webp"}
VIDEO_EXTS = {"mp4", "mov", "m4v", "webm"}
FILE_EXPECT: dict[str, Expect] = {"image": "image", "video": "video", "file": "any"}
FILES_EXPECT: dict[str, Expect] = {"images": "image", "videos": "video", "files": "any"}
MODES = {"t2i": "T2I", "i2i": "I2I", "edit": "EDIT", "inpaint": "INPAINT", "upscale": "UPSCALE", "t2v": "T2V",
         "i2v": "I2V", "first-last-frame": "FLF", "reference-to-video": "R2V", "v2v": "V2V", "multi-shot": "MULTI"}


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
    provider: str | None = None
    record: dict[str, Any] = field(default_factory=dict)  # more record fields (elements)
    shots: list[ShotPart] = field(default_factory=list)  # a multi-shot call's shots
    split: bool = False  # cut a multi-shot clip into one clip per shot
    variations: dict[str, str] | None = None  # per-call variation of a mentioned asset: {"Mara": "night"}
    consistency: str | None = None  # model choice: none | weak | medium | strong
    tier: str | None = None  # model choice: fast | standard | premium
    max_cost_usd: float | None = None  # the most the caller accepts to pay (needed when the price is unknown)
    model_from: str | None = None  # `model` is a default aivp filled in, not the caller's: "the multi-shot default"
    dialogue: bool | None = None  # the clip carries speech (None: read the prompt for quoted lines)


def local_input(state: Studio, raw: str, *, expect: Expect, what: str,
                planned: frozenset[str] = frozenset()) -> InputRef:
    """Resolve an input; a URL of an output aivp already saved becomes that local file.

    Provider links expire (BytePlus after 24 h, Replicate after an hour) and belong to one provider:
    using the saved file means it is uploaded (re-hosted) to whichever provider runs this call.
    `planned` are files a plan will make but that do not exist yet: an estimate treats them as inputs to be.
    """
    if raw in planned and not state.project.exists(raw):
        return InputRef(raw=raw, kind="url", rel=raw, url=f"planned:{raw}")
    limit = state.settings.max_upload_bytes
    ref = resolve_input(state.project, raw, expect=expect, max_bytes=limit, what=what)
    if ref.kind == "url" and ref.url:
        rel = state.ledger.local_copy(ref.url)
        if rel and state.project.exists(rel):
            local = resolve_input(state.project, rel, expect=expect, max_bytes=limit, what=what)
            local.extra["from_url"] = ref.url
            return local
    return ref


def pick(state: Studio, call: Call, task: str, refs: int, prompt: str, config: ProjectConfig) -> tuple[Resolved, str]:
    """The model and endpoint for a call, and the reason, in words (routing rules in catalog/routing.py)."""
    settings = state.settings
    byteplus = settings.key_for("byteplus") is not None and "byteplus" in state.providers
    if call.task == "remove-background" and not call.model:  # a specialist, whatever the image default is
        return default_for("remove-background")
    if call.model:
        routed = image_router(call.model, task, default_image=None, byteplus_ready=byteplus)
        if routed is not None:
            return routed
        ep = _known(state, call) if lookup(call.model) is None else None
        if ep is not None:
            from ..catalog.livemodel import as_model

            model, endpoint, route = as_model(ep, call.kind, task)
            return Resolved(model, endpoint, route), f"{ep.id} from {ep.provider}'s live model list"
        found = resolve(call.model)
        return found, f"{found.model.id}, {call.model_from}" if call.model_from else f"{found.model.id} as requested"
    wants = Wants(task, refs=refs, prompt=prompt, consistency=call.consistency or config.consistency,
                  tier=call.tier or config.tier, configured=config.models.get(task) or config.models.get(call.task),
                  image_default=settings.image_model, byteplus_ready=byteplus,
                  source_in_refs=bool(call.roles.get("image")) and call.tool == "edit_image")
    return choose(wants)


async def prepare_call(state: Studio, call: Call, *, dry_run: bool = False) -> tuple[JobRequest, str]:
    """`prepare`, after reading the live endpoint the call names (fal id or Replicate model) if it is not a catalog one."""
    if call.model and lookup(call.model) is None:  # the live layer is imported on first use: start-up stays flat
        from .live import ensure

        await ensure(state, call.model, call.provider)
    return prepare(state, call, dry_run=dry_run)


def prepare(state: Studio, call: Call, *, dry_run: bool = False,
            planned: frozenset[str] = frozenset()) -> tuple[JobRequest, str]:
    """The checked, priced request for a call, and why that model (and audio for dialogue), in words.
    `dry_run`: no key needed."""
    config = load_config(state.project.root)
    roles = dict(call.roles)
    soft = set(call.soft)
    for role, value in (("aspect_ratio", config.aspect_ratio), ("negative_prompt", config.negative_prompt)):
        if value and roles.get(role) is None and roles.get("prompt") is not None:
            roles[role] = value  # project settings apply where a model has the setting, silently elsewhere
            soft.add(role)
    exp = expand(state.project, roles.get("prompt"), roles.get("references"), call.variations)
    task = TASK_OF.get(call.task, call.task)
    if exp.references and task == "t2i":
        task = "edit"  # references turn text-to-image into a reference-guided edit
    elif exp.references and (task == "t2v" or (task == "i2v" and call.model is None)):
        task = "reference-to-video"
    found, why = pick(state, call, task, len(exp.references), exp.prompt, config)
    model = found.model
    live_ep = _known(state, call) if model.origin == "live" else None
    if live_ep is not None:
        from .live import live_refusal

        if (refused := live_refusal(live_ep, task)) is not None:
            raise refused
        if live_ep.schema_error:
            raise InvalidParameterError(f"{live_ep.provider} could not give the input schema of {live_ep.id} "
                                        f"({live_ep.schema_error}); aivp does not send a request it cannot check. "
                                        "Nothing was sent. Try again later or pick another model with search_models.")
    if not model.active:
        from .live import retired_message

        raise RetiredModelError(retired_message(model, task))
    if model.kind != call.kind:
        tool = "generate_video" if model.kind == "video" else "generate_image or edit_image"
        raise InvalidParameterError(f"{model.id} makes {model.kind}, not {call.kind}; call {tool} with it, or pick "
                                    f"a {call.kind} model with search_models.")
    endpoint: Endpoint = found.endpoint or choose_endpoint(model, task)
    route = found.route or choose_route(state, endpoint, model.id, call.provider or found.provider)
    if route.provider == "fal":
        from .live import route_refusal

        if (gone := route_refusal(state, model, route, endpoint.task)) is not None:
            raise gone
    if found.route is not None and call.provider and call.provider != found.route.provider:
        raise InvalidParameterError(
            f"{call.model!r} is the {found.route.provider} endpoint; it cannot run on {call.provider}. "
            f"Name the model ({model.id}) instead to let aivp pick the {call.provider} route.")
    if exp.mentioned:
        cap = ref_cap(model, endpoint.task, bool(roles.get("image")) and call.tool == "edit_image")
        if cap is not None and len(exp.references) > cap:  # the caller's own list alone is refused by the catalog
            exp = drop_to(exp, cap, model.id)
        roles["prompt"] = exp.prompt
        roles["references"] = exp.references or None
    if not dry_run:  # an estimate needs no key
        _ready(state, endpoint, route, model.id)
    for role in IMAGE_ROLES:
        if isinstance(roles.get(role), str):
            roles[role] = local_input(state, roles[role], expect="image", what=role.replace("_", " "), planned=planned)
    if isinstance(roles.get("video"), str):
        roles["video"] = local_input(state, roles["video"], expect="video", what="video", planned=planned)
    if roles.get("references"):
        roles["references"] = [local_input(state, r, expect="image", what="reference image", planned=planned)
                               for r in roles["references"]]
    options = _option_inputs(state, call.options, effective_params(model, endpoint, route), planned)
    voiced = call.kind == "video" and voice_dialogue(roles, effective_params(model, endpoint, route), call.dialogue,
                                                     [roles.get("prompt") or "", *(s.prompt for s in call.shots)], options)
    targets = None
    if call.output:
        target = state.project.output_path(call.output)
        targets = [state.project.rel(target)]
        sources = [r.path for r in iter_inputs(roles) if r.path is not None]
        if target in sources:
            raise InvalidParameterError(
                f"output {call.output!r} is also an input of this call; aivp never replaces a source file. "
                "Pick another output path.")
        ext = PurePosixPath(targets[0]).suffix.lower().lstrip(".")
        fits = IMAGE_EXTS if call.kind == "image" else VIDEO_EXTS
        if ext not in fits:
            raise InvalidParameterError(f"output {call.output!r} is not a {call.kind} file name; end it in "
                                        f"{', '.join('.' + e for e in sorted(fits))}.")
        if ext in ("png", "jpg", "jpeg", "webp") and roles.get("output_format") is None:
            roles["output_format"] = "jpeg" if ext == "jpg" else ext
            soft.add("output_format")
    state.project.check_saveable(targets[0] if targets else None, call.kind)  # before anything can be paid for
    for shot in call.shots:
        if shot.output:
            state.project.check_saveable(shot.output, "video")
    if live_ep is not None:
        from ..catalog.livemodel import build_live

        schema = live_ep.input
        built = _build_fitting(lambda r: build_live(model, endpoint, route, schema, r, options, soft=soft), roles, soft)
        if live_ep.stale:
            built.warnings.append(f"{live_ep.id}: schema and price {live_ep.stale}.")
    else:
        built = _build_fitting(lambda r: build(model, endpoint, route, r, options, soft=soft), roles, soft)
    built.warnings.extend(exp.notes)
    why += f"; {audio_note(built)}" if voiced else ""
    est = _priced(state, call, estimate_call(model, endpoint, route, built.effective), dry_run)
    req = JobRequest(
        tool=call.tool, built=built, kind=call.kind,
        mode="MULTI" if call.shots else MODES.get(endpoint.task if found.endpoint else task, task.upper()),
        prompt=roles.get("prompt") or _shots_prompt(call.shots), estimate=est, targets=targets, overwrite=call.overwrite,
        fresh=call.fresh, record_type="group" if call.shots else _record_type(targets, call.kind),
        plan_type=_plan_type(targets), record={**_extra(roles), **call.record, **_cast(exp),
                                               **({"catalog": "live"} if live_ep is not None else {})},
        shots=list(call.shots), split=call.split, group=bool(call.shots), budget_usd=state.budget(),
    )
    return req, why


def _known(state: Studio, call: Call) -> Any:
    """The live endpoint `prepare_call` read for this call's model, if any (domain/live.py)."""
    if state.live is None or not call.model:
        return None
    from .live import known

    return known(state, call.model, call.provider)


def _build_fitting(make: Callable[[dict[str, Any]], Built], roles: dict[str, Any], soft: set[str]) -> Built:
    """Build; if a soft default (like output_format from the file name) does not fit the model, drop it."""
    try:
        return make(roles)
    except InvalidParameterError:
        dropped = {k: v for k, v in roles.items() if k not in soft}
        if dropped == roles:
            raise
        return make(dropped)


def _priced(state: Studio, call: Call, est: Estimate, dry_run: bool) -> Estimate:
    """The estimate the budget counts: an unknown price needs the caller's max_cost_usd (never a silent $0),
    and a known one must not pass it."""
    cap = call.max_cost_usd
    if not est.known:
        if cap is None:
            if dry_run:
                return est
            budget = state.budget()
            what = est.detail.removeprefix("price unknown: ")
            text = (f"The price of this call is unknown ({what}). Nothing was sent. Pass max_cost_usd with the most "
                    "you accept to pay for it; that amount is counted against the budget until the job ends.")
            if budget is not None:
                raise BudgetExceeded(f"{text} With a ${budget:.2f} budget set, aivp will not run a call of unknown price "
                                     "without it.")
            raise InvalidParameterError(text)
        return Estimate(cap, "unknown", 1.0, cap, f"{est.detail}; counted at max_cost_usd ${cap:g}", known=False)
    if cap is not None and est.usd > cap + 1e-9:
        raise BudgetExceeded(f"This call would cost about ${est.usd:.3f} ({est.detail}), more than max_cost_usd "
                             f"${cap:g}. Nothing was sent. Raise max_cost_usd or pick a cheaper setting or model.")
    return est


def choose_route(state: Studio, endpoint: Endpoint, model_id: str, prefer: str | None = None) -> Route:
    """The provider for a model several providers serve: the one asked for, else AIVP_PROVIDERS order,
    else the first whose key is set, else the catalog's first (whose missing key is then reported)."""
    settings = state.settings
    usable = [r for r in endpoint.routes if r.provider in state.providers]
    if prefer:
        for r in usable:
            if r.provider == prefer:
                return r
        have = ", ".join(r.provider for r in endpoint.routes)
        raise InvalidParameterError(f"{model_id} ({endpoint.task}) does not run on {prefer}; it runs on {have}.")
    if not usable:
        have = ", ".join(sorted({r.provider for r in endpoint.routes}))
        raise InvalidParameterError(
            f"{model_id} ({endpoint.task}) is served by {have}, which this build of aivp cannot call; "
            "pick another model with search_models.")
    order = list(settings.providers)

    def rank(item: tuple[int, Route]) -> tuple[int, int, int]:
        i, r = item
        listed = order.index(r.provider) if r.provider in order else len(order)
        return (listed, 0 if settings.key_for(r.provider) is not None else 1, i)

    return min(enumerate(usable), key=rank)[1]


def _ready(state: Studio, endpoint: Endpoint, route: Route, model_id: str) -> None:
    """The chosen provider's key is set, or an error that names every way to run this model."""
    try:
        state.runner.providers[route.provider].check_ready()
    except MissingKeyError as exc:
        others = [r.provider for r in endpoint.routes if r.provider != route.provider]
        if not others:
            raise
        names = ", ".join(f"{p} ({key_help(p)[0]})" for p in [route.provider, *others] if p in PROVIDER_NAMES)
        with_key = [p for p in others if state.settings.key_for(p) is not None]
        if with_key:
            raise MissingKeyError(f"{exc} Or run {model_id} on {', '.join(with_key)}, whose key is set: pass "
                                  f"provider='{with_key[0]}' or name the model instead of a {route.provider} alias.") from None
        raise MissingKeyError(f"{model_id} can run on {names}, and none of these keys is set. {exc}") from None


def _record_type(targets: list[str] | None, kind: str) -> str:
    found = layout.convention_type(targets[0]) if targets else None
    return found or ("clip" if kind == "video" else "image")


def _plan_type(targets: list[str] | None) -> str | None:
    if not targets or layout.convention_type(targets[0]) is None:
        return None
    return layout.plan_type(targets[0])


def _cast(exp: Expansion) -> dict[str, Any]:
    if not exp.cast:
        return {}
    return {"mentions": [{"name": a.name, "kind": a.kind, "variation": v.name} for a, v in exp.cast]}


def _shots_prompt(shots: list[ShotPart]) -> str | None:
    return " | ".join(s.prompt for s in shots) if shots else None


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


def _option_inputs(state: Studio, options: dict[str, Any] | None, params: dict[str, Param],
                   planned: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """Files named inside `options` (Kling elements, IP-Adapter images ...) become inputs too, uploaded like any other."""
    if not options:
        return options
    def one(value: Any, key: str, expect: Expect | None = None) -> Any:
        if not isinstance(value, str):
            return value
        if expect is None:
            expect = "video" if "video" in key else "image" if ("image" in key or "mask" in key) else "any"
        return local_input(state, value, expect=expect, what=key, planned=planned)

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k.endswith("_url"):
                    out[k] = one(v, k)
                elif k.endswith("_urls") and isinstance(v, list):
                    out[k] = [one(x, k) for x in v]
                else:
                    out[k] = walk(v)
            return out
        return value

    resolved: dict[str, Any] = {}
    for name, value in options.items():
        p = params.get(name)
        if p is not None and p.type in FILE_EXPECT:
            resolved[name] = one(value, name, FILE_EXPECT[p.type])
        elif p is not None and p.type in FILES_EXPECT and isinstance(value, list):
            resolved[name] = [one(v, name, FILES_EXPECT[p.type]) for v in value]
        elif p is not None and p.type in ("object", "array"):
            resolved[name] = walk(value)
        else:
            resolved[name] = value
    return resolved
