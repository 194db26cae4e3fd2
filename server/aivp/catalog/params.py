"""Turn a tool's generic arguments into one model's native input, checked against the catalog.

Tools speak *roles* (`duration`, `start_image`, `references` ...); each model's parameters say
which native field a role lands in and what values it takes. Everything here runs before any
money is spent: a value outside an enum or range, a missing required input, a broken rule or too
many references raises `InvalidParameterError` naming the valid choices.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidParameterError
from ..inputs import InputRef
from . import effective_params
from .capable import (duration_way_out, lengths, limits_of, nearest_seconds, nearest_value, refs_way_out, role_way_out,
                      seconds, value_way_out)
from .limits import check_limits
from .schema import ROLE_ARG, Endpoint, Model, Param, Route
from .sizes import ASPECT_PRESETS, SIZE_TIERS, nearest_ratio, ratio_size

# Roles that may be dropped with a warning when a model has no field for them; every other role
# changes the result too much to drop silently.
SEED_MAX = 2**32 - 1  # when the catalog gives a seed no range
SOFT_ROLES = {"seed", "negative_prompt", "camera_fixed", "output_format", "aspect_ratio", "resolution"}

@dataclass
class Built:
    """A native payload ready to submit (InputRefs still to be uploaded) and what it will cost."""

    model: Model
    endpoint: Endpoint
    route: Route
    params: dict[str, Param]
    payload: dict[str, Any]
    effective: dict[str, Any]  # payload plus the model's defaults: what will actually run
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model.id} ({self.endpoint.task})"

    def role_field(self, role: str) -> str | None:
        return next((n for n, p in self.params.items() if p.role == role), None)


def choose_endpoint(model: Model, task: str) -> Endpoint:
    for e in model.endpoints:
        if task in e.tasks:
            return e
    from . import catalog

    doing = sorted({m.id for m in catalog().models for e in m.endpoints if task in e.tasks})
    raise InvalidParameterError(
        f"{model.id} does not do {task}; it does {', '.join(sorted({t for e in model.endpoints for t in e.tasks}))}. "
        f"Models that do {task}: {', '.join(doing) or 'none'}."
    )


def build(
    model: Model,
    endpoint: Endpoint,
    route: Route,
    roles: dict[str, Any],
    options: dict[str, Any] | None = None,
    *,
    soft: AbstractSet[str] = frozenset(),
) -> Built:
    """Map role values and native options onto the model's fields and check everything.

    `roles` holds generic values (None means not given); `soft` names roles that came from
    defaults (project settings) rather than the caller, which are dropped quietly when unsupported.
    """
    params = effective_params(model, endpoint, route)
    by_role: dict[str, str] = {p.role: name for name, p in params.items() if p.role}
    b = Built(model, endpoint, route, params, payload={}, effective={})
    label = b.label
    values = {k: v for k, v in roles.items() if v is not None and v != []}

    # The edited image rides at the front of the reference list on models that take one list.
    if "image" in values and "image" not in by_role and "references" in by_role:
        values["references"] = [values.pop("image"), *values.get("references", [])]

    _place_size(b, values, by_role, soft)
    # duration last, after the shot limits: "7 shots, at most 6" says more than "21 s is not a duration"
    for role, value in sorted(values.items(), key=lambda kv: kv[0] == "duration"):
        if role == "duration":
            check_limits(b, limits_of(b.model, b.endpoint))
        name = by_role.get(role)
        if name is None:
            arg = ROLE_ARG.get(role, role)
            if role in SOFT_ROLES or role in soft:
                if role not in soft:
                    b.warnings.append(f"{label} has no {arg} setting; {arg}={_show(value)} was not sent.")
                continue
            way_out = role_way_out(model.id, model.kind, endpoint.task, role, set(values) - SOFT_ROLES)
            raise InvalidParameterError(f"{label} does not take {arg}. {_supported(by_role)} {way_out}")
        try:
            if role == "duration":
                value = coerce_duration(label, name, params[name], value)
            b.payload[name] = check(label, name, params[name], value)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"{exc} {_way_out(b, role, params[name], value)}".strip()) from None

    for name, value in (options or {}).items():
        if name not in params:
            raise InvalidParameterError(
                f"{label} has no option {name!r}. Its options are: {', '.join(sorted(params))}."
            )
        if name in b.payload:
            raise InvalidParameterError(
                f"{name} is set twice for {label}: by a tool argument and in options; keep one."
            )
        b.payload[name] = check(label, name, params[name], value)

    for name, p in params.items():
        if p.required and name not in b.payload:
            arg = ROLE_ARG.get(p.role or "", name)
            raise InvalidParameterError(f"{label} needs {arg}: {(p.description or 'it is required').rstrip('.')}.")
    b.effective = {**{n: p.default for n, p in params.items() if p.default is not None}, **b.payload}
    _check_rules(b)
    return b


def _place_size(b: Built, values: dict[str, Any], by_role: dict[str, str], soft: AbstractSet[str]) -> None:
    """Fit aspect ratio / size onto whichever of aspect_ratio, image_size, resolution the model has."""
    size, ratio = values.get("size"), values.get("aspect_ratio")
    if isinstance(size, str) and size.lower() in SIZE_TIERS and "size" in by_role and b.params[by_role["size"]].custom_size:
        # Seedream-style tiers: a pixel budget at the requested aspect ratio (4:5 standard = 1920x2400)
        wh = ratio_size(str(ratio or "1:1"), SIZE_TIERS[size.lower()], multiple=16)
        assert wh is not None
        values["size"], size = {"width": wh[0], "height": wh[1]}, None
        values.pop("aspect_ratio", None)
        ratio = None
    if size is not None and "size" not in by_role:
        values.pop("size")
        if "resolution" in by_role and str(size) in _enum(b.params[by_role["resolution"]]):
            values.setdefault("resolution", str(size))
        elif m := re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", str(size)):
            if "aspect_ratio" in by_role and ratio is None:
                values["aspect_ratio"] = nearest_ratio(int(m[1]), int(m[2]), _enum(b.params[by_role["aspect_ratio"]]))
                b.warnings.append(f"{b.label} takes an aspect ratio, not a pixel size; sent {values['aspect_ratio']}.")
        else:
            raise InvalidParameterError(f"{b.label} has no size setting; {_supported(by_role)}")
    if ratio is not None and "aspect_ratio" not in by_role and "size" in by_role and "size" not in values:
        values.pop("aspect_ratio")
        p = b.params[by_role["size"]]
        preset = ASPECT_PRESETS.get(str(ratio))
        if preset and preset in (p.presets or {}):
            values["size"] = preset
        elif p.custom_size and (wh := ratio_size(str(ratio), _megapixels(b))):
            values["size"] = {"width": wh[0], "height": wh[1]}
        elif "aspect_ratio" not in soft:
            raise InvalidParameterError(
                f"{b.label} cannot make a {ratio} image; its sizes are {', '.join(p.presets or {})}. "
                f"{value_way_out(b.model.id, b.model.kind, b.endpoint.task, 'aspect_ratio', ratio)}")
    elif ratio is not None and "size" in values and "aspect_ratio" not in by_role:
        values.pop("aspect_ratio")  # an explicit size wins over the ratio


def _megapixels(b: Built) -> float:
    """Target size for a custom aspect ratio: about 1 MP, or the model's minimum when that is more."""
    limits = limits_of(b.model, b.endpoint)
    return max(1.0, (limits.min_pixels or 0) / 1_000_000 * 1.02)


def check(label: str, name: str, p: Param, value: Any) -> Any:
    """Validate (and gently coerce) one native value; raise naming what is allowed."""
    where = f"{label}: {name}"
    t = p.type
    if t in ("image", "video", "file"):
        if not isinstance(value, InputRef | str):
            raise InvalidParameterError(f"{where} must be one {t} (a project path, https URL or data: URI).")
        return value
    if t in ("images", "videos", "files"):
        items = value if isinstance(value, list) else [value]
        _check_count(where, p, items, t)
        return items
    if t == "any":
        return value
    if t == "array":
        if not isinstance(value, list):
            raise InvalidParameterError(f"{where} must be a list.")
        _check_count(where, p, value, "items")
        return value
    if t == "object":
        if not isinstance(value, dict):
            raise InvalidParameterError(f"{where} must be an object.")
        return value
    if t == "size":
        return _check_size(where, p, value)
    if t == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise InvalidParameterError(f"{where} must be true or false.")
        return value
    if t in ("integer", "number"):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise InvalidParameterError(f"{where} must be a number, not {value!r}.") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise InvalidParameterError(f"{where} must be a number.")
        if t == "integer":
            if value != int(value):
                raise InvalidParameterError(f"{where} must be a whole number, not {value}.")
            value = int(value)
    if t == "string":
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(int(value)) if float(value).is_integer() else str(value)
        if not isinstance(value, str):
            raise InvalidParameterError(f"{where} must be text.")
    if p.values is not None:
        match = next((v for v in p.values if v == value or str(v) == str(value)), None)
        if match is None:
            raise InvalidParameterError(
                f"{where}={_show(value)} is not allowed; choose one of {', '.join(_show(v) for v in p.values)}."
            )
        value = match
    if t in ("integer", "number") and (
        (p.min is not None and value < p.min) or (p.max is not None and value > p.max)
    ):
        raise InvalidParameterError(f"{where}={value} is out of range; it must be {_range(p)}.")
    if p.role == "seed" and p.min is None and p.max is None and not 0 <= value <= SEED_MAX:
        # providers take 32-bit seeds; a larger number is either refused after the submit or silently cut
        raise InvalidParameterError(f"{where}={value} is out of range; a seed is a whole number from 0 to {SEED_MAX}.")
    return value


def _check_count(where: str, p: Param, items: list[Any], what: str) -> None:
    if p.max_items is not None and len(items) > p.max_items:
        raise InvalidParameterError(f"{where} takes at most {p.max_items} {what}; {len(items)} were given.")
    if p.min_items is not None and len(items) < p.min_items:
        raise InvalidParameterError(f"{where} needs at least {p.min_items} {what}; {len(items)} were given.")


def _check_size(where: str, p: Param, value: Any) -> Any:
    presets = p.presets or {}
    if isinstance(value, str):
        if value in presets:
            return value
        if m := re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", value):
            value = {"width": int(m[1]), "height": int(m[2])}
    if isinstance(value, dict) and p.custom_size:
        w, h = value.get("width"), value.get("height")
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            if (p.min is not None and min(w, h) < p.min) or (p.max is not None and max(w, h) > p.max):
                raise InvalidParameterError(f"{where}: width and height must be {_range(p)}.")
            return {"width": w, "height": h}
    custom = " or WIDTHxHEIGHT" if p.custom_size else ""
    raise InvalidParameterError(f"{where}={_show(value)} is not a size it takes; use {', '.join(presets)}{custom}.")


def coerce_duration(label: str, name: str, p: Param, value: Any) -> Any:
    """Spell a duration the way the model wants it ("5", "8s", 5) or name the durations it takes."""
    s = seconds(value)
    if s is None:
        raise InvalidParameterError(f"{label}: duration must be a number of seconds, not {value!r}.")
    if p.values:
        for v in p.values:
            if seconds(v) == s:
                return v
        other = [str(v) for v in p.values if seconds(v) is None]
        also = f" (or {', '.join(other)} through options)" if other else ""
        raise InvalidParameterError(f"{label} makes clips of {lengths(p)}{also}; {s:g}s is not one of them.")
    if p.type in ("integer", "number"):
        return int(s) if p.type == "integer" and s.is_integer() else s
    return str(int(s)) if s.is_integer() else str(s)


def _way_out(b: Built, role: str, p: Param, value: Any) -> str:
    """After a refused value: the nearest one the model takes, and the curated models that take it."""
    model, kind, task, arg = b.model.id, b.model.kind, b.endpoint.task, ROLE_ARG.get(role, role)
    if role == "duration":
        if (s := seconds(value)) is None:
            return ""
        near = nearest_seconds(p, s)
        return (f"Nearest it makes: duration={near:g}. " if near is not None else "") + duration_way_out(model, task, s)
    if role == "references" and isinstance(value, list) and p.max_items is not None and len(value) > p.max_items:
        return refs_way_out(model, kind, task, len(value))
    if p.values is not None and not isinstance(value, list | dict):
        near = nearest_value(role, value, list(p.values))
        return (f"Nearest it takes: {arg}={near!r}. " if near is not None else "") + \
            value_way_out(model, kind, task, role, value)
    if p.type in ("integer", "number") and isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = p.min if p.min is not None else value, p.max if p.max is not None else value
        near = min(max(value, lo), hi)
        if near != value:
            return f"Nearest it takes: {arg}={near:g}. {value_way_out(model, kind, task, role, value)}"
    return ""


def _check_rules(b: Built) -> None:
    for rule in [*b.model.rules, *b.endpoint.rules]:
        present = {k for k, v in b.payload.items() if v not in (None, "", [])}
        if rule.exactly_one is not None and len(present & set(rule.exactly_one)) != 1:
            names = " or ".join(ROLE_ARG.get(b.params[n].role or "", n) if n in b.params else n for n in rule.exactly_one)
            raise InvalidParameterError(rule.message or f"{b.label} needs exactly one of {names}, not both or neither.")
        if rule.at_most_one is not None and len(present & set(rule.at_most_one)) > 1:
            raise InvalidParameterError(rule.message or f"{b.label} takes only one of {', '.join(rule.at_most_one)}.")
        for name, needs in (rule.requires or {}).items():
            if name in present and not set(needs) <= present:
                raise InvalidParameterError(rule.message or f"{b.label}: {name} also needs {', '.join(needs)}.")
    check_limits(b, limits_of(b.model, b.endpoint))


def _enum(p: Param) -> list[str]:
    return [str(v) for v in p.values or []]


def _supported(by_role: dict[str, str]) -> str:
    args = sorted({ROLE_ARG.get(r, r) for r in by_role})
    return f"It takes: {', '.join(args)}."


def _range(p: Param) -> str:
    if p.min is not None and p.max is not None:
        return f"between {p.min:g} and {p.max:g}"
    return f"at least {p.min:g}" if p.min is not None else f"at most {p.max:g}"


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)
