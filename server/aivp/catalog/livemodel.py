"""A live endpoint as a catalog model, and a call's flat arguments mapped onto its schema's fields.

The curated catalog says which native field each tool argument (a *role*) lands in. A live endpoint
has no such knowledge, so it is read off the schema: by field name first (`image_url`,
`start_image_url`, `first_frame_url`, `image_urls`, `reference_image_urls`, `end_image_url`,
`generate_audio` ...), then by description ("the first frame", "reference images") for file fields.
Values are coerced to the schema's spelling (5 -> "5" for a string enum, 8 -> "8s" where durations
are spelled so), then the whole payload is checked against the schema with `jsonschema`
(validate.py). An argument with no field is refused with the schema's field list, except the few
that may be dropped with a warning (seed, negative prompt ...); `options` reaches any native field.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from typing import Any, cast

from ..errors import InvalidParameterError
from ..inputs import InputRef
from .live import LiveEndpoint, LivePrice
from .openapi import media_kind, order, output_shape, simple, type_of, variants
from .params import SOFT_ROLES, Built
from .schema import ROLE_ARG, Endpoint, Model, Param, Pricing, Role, Route
from .sizes import ASPECT_PRESETS, nearest_ratio, ratio_size
from .validate import validate

COMMON: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt", "text_prompt", "text", "input_prompt"),
    "negative_prompt": ("negative_prompt",),
    "seed": ("seed",),
    "num_images": ("num_images", "num_outputs", "number_of_images"),
    "aspect_ratio": ("aspect_ratio",),
    "size": ("image_size", "size"),
    "resolution": ("resolution",),
    "duration": ("duration", "num_seconds", "seconds", "duration_seconds", "video_length"),
    "audio": ("generate_audio", "enable_audio", "with_audio", "audio"),
    "camera_fixed": ("camera_fixed",),
    "strength": ("strength", "image_strength", "prompt_strength"),
    "upscale_factor": ("upscale_factor", "scale", "upscale"),
    "output_format": ("output_format",),
    "multi_prompt": ("multi_prompt",),
    "elements": ("elements",),
}
VIDEO_FILES: dict[str, tuple[str, ...]] = {
    "start_image": ("start_image_url", "first_frame_url", "image_url", "first_frame_image", "start_image",
                    "first_frame", "image", "input_image", "init_image"),
    "end_image": ("end_image_url", "last_frame_url", "tail_image_url", "last_frame_image", "end_image", "last_frame",
                  "last_image"),
    "references": ("reference_image_urls", "image_urls", "reference_images", "input_images", "subject_image_urls"),
    "video": ("video_url", "input_video", "video", "source_video_url"),
}
IMAGE_FILES: dict[str, tuple[str, ...]] = {
    "image": ("image_url", "image", "input_image", "init_image", "source_image_url"),
    "references": ("image_urls", "reference_image_urls", "input_images", "image_input", "reference_images"),
    "mask": ("mask_url", "mask_image_url", "mask_image", "mask"),
}
HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("start_image", re.compile(r"\b(first|start(ing)?|initial|opening)\s+(frame|image)", re.I)),
    ("end_image", re.compile(r"\b(last|end(ing)?|final|tail|closing)\s+(frame|image)", re.I)),
    ("mask", re.compile(r"\bmask", re.I)),
    ("references", re.compile(r"\breference", re.I)),
    ("video", re.compile(r"\b(source|input)\s+video", re.I)),
    ("image", re.compile(r"\b(source|input)\s+image|image to (edit|upscale)", re.I)),
)
FILE_ROLES = {"start_image": ("image", False), "end_image": ("image", False), "image": ("image", False),
              "mask": ("image", False), "references": ("image", True), "video": ("video", False)}
SCALAR_ROLES = {"audio": {"boolean"}, "camera_fixed": {"boolean"}, "seed": {"integer", "number"},
                "num_images": {"integer"}, "duration": {"string", "integer", "number"}, "prompt": {"string"},
                "negative_prompt": {"string"}, "aspect_ratio": {"string"}, "resolution": {"string"},
                "output_format": {"string"}, "strength": {"number", "integer"}, "upscale_factor": {"number", "integer"},
                "multi_prompt": {"array"}, "elements": {"array"}}
FAL_PRESETS = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
               "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
UNITS = {"image": "image", "images": "image", "megapixel": "megapixel", "megapixels": "megapixel", "mp": "megapixel",
         "second": "second", "seconds": "second", "video second": "second", "video seconds": "second", "sec": "second",
         "s": "second", "request": "call", "requests": "call", "call": "call", "calls": "call", "generation": "call",
         "generations": "call", "video": "call", "videos": "call"}


def roles_of(schema: dict[str, Any], kind: str) -> dict[str, str]:
    """field -> role for a live schema: names first, then descriptions of file fields; one field per role."""
    props = {n: (p if isinstance(p, dict) else {}) for n, p in (schema.get("properties") or {}).items()}
    taken: dict[str, str] = {}
    roles: dict[str, str] = {}

    def fits(role: str, name: str) -> bool:
        if role in FILE_ROLES:
            return media_kind(name, props[name]) == FILE_ROLES[role]
        if role == "size":
            return True
        return type_of(simple(props[name])) in SCALAR_ROLES.get(role, {type_of(simple(props[name]))})

    files = VIDEO_FILES if kind == "video" else IMAGE_FILES
    for role, names in {**COMMON, **files}.items():
        for name in names:
            if name in props and name not in taken and fits(role, name):
                taken[name], roles[role] = role, name
                break
    for name in order(schema):
        if name in taken or media_kind(name, props[name]) is None:
            continue
        text = f"{name.replace('_', ' ')} {props[name].get('description', '')}"
        for role, pattern in HINTS:
            if role in files and role not in roles and fits(role, name) and pattern.search(text):
                taken[name], roles[role] = role, name
                break
    return taken


def live_card(ep: LiveEndpoint, kind: str | None = None) -> dict[str, Any]:
    """The endpoint's compact card, each field that a tool argument feeds marked with that argument."""
    out = ep.card()
    roles = roles_of(ep.input, ep.kind or kind or "image")
    for p in out["params"]:
        if p["name"] in roles:
            p["argument"] = ROLE_ARG.get(roles[p["name"]], roles[p["name"]])
    return out


def params_of(schema: dict[str, Any], kind: str) -> dict[str, Param]:
    """The schema's fields as catalog parameters (type, role, default; enums and ranges for display and pricing)."""
    props = schema.get("properties") or {}
    roles = roles_of(schema, kind)
    out: dict[str, Param] = {}
    for name in order(schema):
        prop = props[name] if isinstance(props[name], dict) else {}
        p = simple(prop)
        media = media_kind(name, prop)
        presets = None
        custom = False
        if media:
            ptype = {"image": "image", "video": "video", "file": "file"}[media[0]] + ("s" if media[1] else "")
        elif roles.get(name) == "size":
            names = [v for a in variants(prop) for v in a.get("enum") or [] if isinstance(v, str)]
            custom = any("width" in (a.get("properties") or {}) for a in variants(prop))
            presets = {n: FAL_PRESETS.get(n, (1024, 1024)) for n in names}
            ptype = "size" if presets else "any"
        elif len(variants(prop)) > 1:
            ptype = "any"
        else:
            t = type_of(p)
            ptype = t if t in ("string", "integer", "number", "boolean", "array", "object") else "any"
        values = [v for v in p.get("enum") or [] if isinstance(v, str | int | float) and not isinstance(v, bool)]
        num = {k: float(p[k]) for k in ("minimum", "maximum") if isinstance(p.get(k), int | float)}
        out[name] = Param(
            type=ptype, description=" ".join(str(p.get("description") or "").split())[:200],
            default=p.get("default"), values=values or None, min=num.get("minimum"), max=num.get("maximum"),
            min_items=p.get("minItems") if isinstance(p.get("minItems"), int) else None,
            max_items=p.get("maxItems") if isinstance(p.get("maxItems"), int) else None,
            role=cast(Role | None, roles.get(name)), presets=presets, custom_size=custom)
    return out


def pricing_of(price: LivePrice | None, note: str, has_duration: bool) -> Pricing:
    """The pricing API's unit price as a catalog Pricing; "unknown" (never $0) when it cannot be used."""
    if price is None:
        return Pricing(unit="unknown", price=0.0, note=note or "no price")
    unit = UNITS.get(price.unit.removeprefix("per ").strip())
    if price.currency != "USD":
        return Pricing(unit="unknown", price=0.0, note=f"priced in {price.currency}, not USD")
    if unit is None:
        return Pricing(unit="unknown", price=0.0, note=f"priced per {price.unit}, which aivp cannot count before the run")
    if unit == "second" and not has_duration:
        return Pricing(unit="unknown", price=0.0, note=f"${price.unit_price:g}/second, but the clip length is not an input")
    return Pricing(unit=unit, price=price.unit_price, note=f"fal pricing API: ${price.unit_price:g} per {price.unit}")


def as_model(ep: LiveEndpoint, kind: str, task: str) -> tuple[Model, Endpoint, Route]:
    """A catalog Model with one endpoint and one route, built from what the provider says."""
    kind = ep.kind or kind
    params = params_of(ep.input, kind)
    roles = {p.role for p in params.values() if p.role}
    task = ep.task or task
    also = ["first-last-frame"] if task == "i2v" and "end_image" in roles else []
    endpoint = Endpoint.model_validate({"task": task, "also": also, "output": output_shape(ep.output, kind),
                                        "routes": [{"provider": ep.provider, "endpoint": ep.submit_to}]})
    model = Model(id=ep.id, name=ep.name, vendor=ep.id.split("/")[0], kind=cast(Any, kind), summary=ep.description[:140] or ep.id,
                  tier="standard", speed=2, quality=3, params=params, endpoints=[endpoint], origin="live",
                  pricing=pricing_of(ep.price, ep.price_note, "duration" in roles),
                  source=f"{ep.provider} model API (live)", notes=ep.stale or "")
    return model, endpoint, endpoint.routes[0]


# ---------------------------------------------------------------- flat arguments -> native payload

def build_live(model: Model, endpoint: Endpoint, route: Route, schema: dict[str, Any], roles: dict[str, Any],
               options: dict[str, Any] | None, *, soft: AbstractSet[str] = frozenset()) -> Built:
    """Map the call's role values and options onto the schema's fields, coerce, then validate with jsonschema."""
    params = model.params
    props = schema.get("properties") or {}
    by_role: dict[str, str] = {str(p.role): n for n, p in params.items() if p.role}
    b = Built(model, endpoint, route, params, payload={}, effective={})
    values = {k: v for k, v in roles.items() if v is not None and v != []}
    if "image" in values and "image" not in by_role:  # the edited image rides in a reference list, or is the start frame
        if "references" in by_role:
            values["references"] = [values.pop("image"), *values.get("references", [])]
        elif "start_image" in by_role:
            values["start_image"] = values.pop("image")
    if "start_image" in values and "start_image" not in by_role and "image" in by_role:
        values["image"] = values.pop("start_image")
    _place_size(b, values, by_role, props)
    args = {name: ROLE_ARG.get(role, role) for role, name in by_role.items()}
    fields = ", ".join(order(schema)) or "none"
    for role, value in values.items():
        name = by_role.get(role)
        arg = ROLE_ARG.get(role, role)
        if name is None:
            # a model without a prompt field (lip-sync, upscalers) ignores the text the tools always require
            if role in SOFT_ROLES or role in soft or role == "prompt":
                if role not in soft:
                    b.warnings.append(f"{b.label} has no {arg} field; {arg} was not sent.")
                continue
            raise InvalidParameterError(
                f"{b.label} has no field for {arg}; its fields are: {fields}. Nothing was sent. Pass a native field "
                "through options, or pick another model with search_models.")
        b.payload[name] = coerce(props.get(name) or {}, value, role)
    for name, value in (options or {}).items():
        if name not in props:
            raise InvalidParameterError(f"{b.label} has no field {name!r}; its fields are: {fields}. Nothing was sent.")
        if name in b.payload:
            raise InvalidParameterError(f"{name} is set twice for {b.label}: by a tool argument and in options; keep one.")
        b.payload[name] = coerce(props[name] if isinstance(props[name], dict) else {}, value, None)
    b.effective = {**{n: p.default for n, p in params.items() if p.default is not None}, **b.payload}
    validate(b.label, schema, b.payload, args)
    return b


def _place_size(b: Built, values: dict[str, Any], by_role: dict[str, str], props: dict[str, Any]) -> None:
    size, ratio = values.get("size"), values.get("aspect_ratio")
    if size is not None and "size" not in by_role:
        values.pop("size")
        res = by_role.get("resolution")
        if res and str(size) in [str(v) for v in b.params[res].values or []]:
            values.setdefault("resolution", str(size))
        elif (m := re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", str(size))) and "aspect_ratio" in by_role and ratio is None:
            values["aspect_ratio"] = nearest_ratio(int(m[1]), int(m[2]), [str(v) for v in
                                                                          b.params[by_role["aspect_ratio"]].values or []])
        else:
            raise InvalidParameterError(f"{b.label} has no size field; use aspect_ratio or resolution where it has them.")
    if ratio is not None and "aspect_ratio" not in by_role and "size" in by_role and "size" not in values:
        p = b.params[by_role["size"]]
        preset = ASPECT_PRESETS.get(str(ratio))
        if preset and preset in (p.presets or {}):
            values["size"] = preset
        elif p.custom_size and (wh := ratio_size(str(ratio), 1.0)):
            values["size"] = {"width": wh[0], "height": wh[1]}
        else:
            return
        values.pop("aspect_ratio")


def coerce(prop: dict[str, Any], value: Any, role: str | None) -> Any:
    """A value in the schema's spelling: numbers as strings for string enums, "8s" durations, WxH as an object."""
    if isinstance(value, InputRef) or (isinstance(value, list) and any(isinstance(v, InputRef) for v in value)):
        return value
    alts = variants(prop)
    p = simple(prop)
    enum = [v for a in alts for v in a.get("enum") or []]
    if role == "duration" and enum:
        try:
            seconds = float(str(value).strip().rstrip("s"))
        except ValueError:
            return value
        for v in enum:
            try:
                if float(str(v).rstrip("s")) == seconds:
                    return v
            except ValueError:
                continue
        if all(isinstance(v, str) for v in enum):  # not offered: say so in the schema's own spelling
            return str(int(seconds)) if seconds.is_integer() else str(seconds)
        return value
    if role == "size" and isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", value)
        if m and any("width" in (a.get("properties") or {}) for a in alts):
            return {"width": int(m[1]), "height": int(m[2])}
        return value
    t = type_of(p) if len(alts) == 1 else None
    if enum and all(isinstance(v, str) for v in enum if v is not None) and isinstance(value, int | float) \
            and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    if t == "integer" and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    if t == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if t == "number" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if t == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if t == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value
