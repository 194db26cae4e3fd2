"""The way out of a refused call: the nearest value a model takes, and which curated models can do it.

Every limit error (a clip length, resolution or aspect ratio a model does not make, too many
references, shots or elements, an input it does not take) ends with one of these sentences, so the
caller knows what to change. Everything is computed from the catalog: no model name is written here,
and a model the catalog states no limit for is never said to meet one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from . import catalog, effective_params
from .pricing import SHORT_SIDE, typical
from .schema import ROLE_ARG, Endpoint, Limits, Model, Param
from .sizes import ASPECT_PRESETS, parse_ratio

SHOWN = 3  # models named in one error


def limits_of(model: Model, endpoint: Endpoint) -> Limits:
    """The model's limits with the endpoint's own values on top."""
    if endpoint.limits is None:
        return model.limits
    return Limits(**{**model.limits.model_dump(exclude_defaults=True), **endpoint.limits.model_dump(exclude_defaults=True)})


def _doing(task: str, kind: str, exclude: str) -> Iterator[tuple[Model, list[Endpoint]]]:
    """Active curated models of that kind with the endpoints that do the task, best-rated first."""
    found = []
    for m in catalog().models:
        if not m.active or m.origin != "curated" or m.kind != kind or m.id == exclude:
            continue
        endpoints = [e for e in m.endpoints if task in e.tasks]
        if endpoints:
            found.append(((-m.quality, typical(m).usd, m.id), m, endpoints))
    for _, m, endpoints in sorted(found, key=lambda f: f[0]):
        yield m, endpoints


def _role_params(m: Model, endpoints: list[Endpoint], role: str) -> list[Param]:
    return [p for e in endpoints for r in e.routes for p in effective_params(m, e, r).values() if p.role == role]


def _names(found: list[tuple[Model, str]]) -> str:
    return ", ".join(f"{m.id} ({said})" if said else m.id for m, said in found[:SHOWN])


# ---------------------------------------------------------------- clip lengths

def seconds(v: Any) -> float | None:
    """A duration value in seconds ("5", "8s", 5), or None for a word such as "auto"."""
    try:
        return float(str(v).strip().rstrip("s"))
    except ValueError:
        return None


def span(p: Param) -> tuple[list[float] | None, float | None, float | None]:
    """The lengths a duration parameter takes: (listed values or None for a range, shortest, longest)."""
    if p.values:
        listed = sorted({s for s in (seconds(v) for v in p.values) if s is not None})
        return listed, (listed[0] if listed else None), (listed[-1] if listed else None)
    if p.type in ("integer", "number") and p.max is not None:
        return None, max(p.min or 0, 1), p.max
    return None, None, None


def takes_seconds(p: Param, s: float) -> bool:
    listed, lo, hi = span(p)
    if listed is not None:
        return s in listed
    return lo is not None and hi is not None and lo <= s <= hi and (p.type != "integer" or s.is_integer())


def lengths(p: Param) -> str:
    """"4s to 12s", "4s, 6s, 8s" (the lengths a duration parameter takes, in words)."""
    listed, lo, hi = span(p)
    if listed is None or (len(listed) > 3 and all(b - a == 1 for a, b in zip(listed, listed[1:], strict=False))):
        return f"{lo:g}s to {hi:g}s" if lo is not None and hi is not None else "any length"
    return ", ".join(f"{s:g}s" for s in listed)


def nearest_seconds(p: Param, s: float) -> float | None:
    listed, lo, hi = span(p)
    if listed:
        return min(listed, key=lambda a: (abs(a - s), -a))
    if lo is None or hi is None:
        return None
    return min(max(s, lo), hi) if p.type != "integer" else float(min(max(round(s), math.ceil(lo)), math.floor(hi)))


def duration_way_out(model_id: str, task: str, s: float) -> str:
    """Curated models that make an s-second clip for the task, or the longest ones and what to do instead."""
    fits: list[tuple[Model, str]] = []
    longest: list[tuple[float, Model, str]] = []
    for m, endpoints in _doing(task, "video", model_id):
        params = [p for p in _role_params(m, endpoints, "duration") if span(p)[2] is not None]
        if not params:
            continue
        if fit := next((p for p in params if takes_seconds(p, s)), None):
            fits.append((m, lengths(fit)))
        top = max(params, key=lambda p: span(p)[2] or 0)
        longest.append((span(top)[2] or 0, m, lengths(top)))
    if fits:
        return f"Models that make {s:g}s clips ({task}): {_names(fits)}."
    longest.sort(key=lambda x: -x[0])
    shown = _names([(m, said) for _, m, said in longest])
    multi = [limits_of(m, e).max_total_s or 0 for m, endpoints in _doing("multi-shot", "video", "") for e in endpoints]
    more = (f" or as shots of one multi_shot_video call (up to {max(multi):g}s)" if multi and max(multi) >= s else "")
    return (f"No curated model makes {s:g}s in one {task} clip; the longest: {shown}. Make it as several shorter "
            f"clips{more}.")


# ---------------------------------------------------------------- values, inputs, counts

def _takes_value(m: Model, endpoints: list[Endpoint], role: str, value: Any) -> Param | None:
    for p in _role_params(m, endpoints, role):
        if p.values is not None and any(str(v).lower() == str(value).lower() for v in p.values):
            return p
        if p.values is None and p.type in ("integer", "number") and isinstance(value, int | float) and \
                (p.min is None or value >= p.min) and (p.max is None or value <= p.max):
            return p
    if role == "aspect_ratio":  # image models that take the ratio as a size preset or a custom size
        for p in _role_params(m, endpoints, "size"):
            if p.custom_size or ASPECT_PRESETS.get(str(value)) in (p.presets or {}):
                return p
    return None


def value_way_out(model_id: str, kind: str, task: str, role: str, value: Any) -> str:
    """Curated models that take this value of a setting (resolution, aspect ratio ...) for the task."""
    fits = [(m, "") for m, endpoints in _doing(task, kind, model_id) if _takes_value(m, endpoints, role, value)]
    arg = f"{ROLE_ARG.get(role, role)}={value!r}"
    return f"Models that take {arg} ({task}): {_names(fits)}." if fits else f"No curated model takes {arg} for {task}."


def nearest_value(role: str, value: Any, choices: list[Any]) -> Any:
    """The choice closest to an unsupported value: by short side for a resolution, by shape for an aspect ratio."""
    if role == "resolution" and str(value).lower() in SHORT_SIDE:
        sized = [c for c in choices if str(c).lower() in SHORT_SIDE]
        want = SHORT_SIDE[str(value).lower()]
        return min(sized, key=lambda c: (abs(SHORT_SIDE[str(c).lower()] - want), -SHORT_SIDE[str(c).lower()]),
                   default=None)
    if role == "aspect_ratio" and (want_r := parse_ratio(str(value))):
        shaped = [(abs(math.log(r / want_r)), c) for c in choices if (r := parse_ratio(str(c)))]
        return min(shaped)[1] if shaped else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        numeric = [c for c in choices if isinstance(c, int | float)]
        return min(numeric, key=lambda c: abs(c - value), default=None)
    return None


def role_way_out(model_id: str, kind: str, task: str, role: str, given: AbstractSet[str] = frozenset()) -> str:
    """Where an input or setting this endpoint has no field for can go: this model's endpoint for another task
    that also takes the rest of the call (`given` roles), named by its id, which pins it; or curated models
    doing the task that take it."""
    arg = ROLE_ARG.get(role, role)
    if role == "end_image" and task in ("t2v", "reference-to-video"):
        return "An end frame goes with a start frame: pass image too (first-last-frame)."
    own = next((m for m in catalog().models if m.id == model_id), None)
    other = next((e for e in own.endpoints if task not in e.tasks and
                  all(_role_params(own, [e], r) for r in {role, *given})), None) if own else None
    lead = f"Its {other.task} endpoint takes {arg}: model='{other.routes[0].endpoint}'. " if other else ""
    fits = [(m, "") for m, endpoints in _doing(task, kind, model_id) if _role_params(m, endpoints, role)]
    return lead + (f"Models that take {arg} ({task}): {_names(fits)}." if fits else
                   f"No other curated model takes {arg} for {task}.")


def refs_way_out(model_id: str, kind: str, task: str, n: int) -> str:
    """Curated models doing the task that take n reference images."""
    from .routing import ref_cap

    stated, unstated = [], []
    for m, _ in _doing(task, kind, model_id):
        cap = ref_cap(m, task)
        if cap is not None and cap >= n:
            stated.append((m, f"up to {cap}"))
        elif cap is None:
            unstated.append((m, "no stated limit"))
    fits = stated + unstated  # a stated limit first: "no stated limit" may still refuse them
    return (f"Models that take {n} reference images ({task}): {_names(fits)}." if fits
            else f"No curated model takes {n} reference images for {task}.")


def limit_way_out(model_id: str, kind: str, task: str, limit: str, wanted: float, what: str, unit: str = "") -> str:
    """Curated models whose stated limit (a `Limits` field such as max_shots) allows `wanted`.

    `what` says the quantity in words ("{n} shots in one call"); a model with no stated limit is not named."""
    most = limit.startswith("max")
    get: Callable[[Model, Endpoint], float | None] = lambda m, e: getattr(limits_of(m, e), limit)
    fits: list[tuple[Model, str]] = []
    best: float | None = None
    for m, endpoints in _doing(task, kind, model_id):
        caps = [c for c in (get(m, e) for e in endpoints) if c is not None]
        if not caps:
            continue
        cap = max(caps) if most else min(caps)
        best = cap if best is None else (max(best, cap) if most else min(best, cap))
        if (cap >= wanted) if most else (cap <= wanted):
            fits.append((m, f"{'up to' if most else 'from'} {cap:g}{unit}"))
    said = what.format(n=f"{wanted:g}")
    if fits:
        return f"Models that take {said}: {_names(fits)}."
    if best is None:
        return f"No curated model states that it takes {said}."
    return f"No curated model takes {said} (the {'most' if most else 'least'} any takes: {best:g}{unit})."
