"""What an endpoint accepts, read from the catalog, and fal-style (pydantic v2) validation errors.

The sandbox knows nothing about specific models: it reads each endpoint's parameters and their
roles from `aivp.catalog` and checks a payload the way a fal app's pydantic input model would.
Endpoints of the platform fixtures (not in the catalog) are checked against their own OpenAPI
input schema with `jsonschema`, the errors reshaped like fal's. Endpoints it knows nothing about
get a generic image spec and no validation, so a raw endpoint id still produces something.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..catalog import find_route
from ..catalog import effective_params as _effective_params
from ..catalog.schema import Param, Rule

FAL_ERRORS = "https://docs.fal.ai/errors/#"

# field name -> role, for payload fields the catalog does not describe (unknown endpoints)
NAME_ROLES = {
    "prompt": "prompt",
    "num_images": "num_images",
    "aspect_ratio": "aspect_ratio",
    "image_size": "size",
    "resolution": "resolution",
    "duration": "duration",
    "generate_audio": "audio",
    "image_url": "image",
    "start_image_url": "start_image",
    "first_frame_url": "start_image",
    "end_image_url": "end_image",
    "last_frame_url": "end_image",
    "image_urls": "references",
    "mask_url": "mask",
    "video_url": "video",
    "seed": "seed",
    "output_format": "output_format",
    "upscale_factor": "upscale_factor",
    "multi_prompt": "multi_prompt",
}


@dataclass
class Spec:
    """One endpoint as the sandbox sees it."""

    endpoint: str
    model_id: str | None
    model_name: str
    output: str  # "images" | "image" | "video"
    params: dict[str, Param] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    schema: dict[str, Any] | None = None  # a fixture endpoint's JSON Schema (validated with jsonschema)

    @property
    def known(self) -> bool:
        return self.model_id is not None


def spec_for(endpoint_id: str, provider: str = "fal") -> Spec:
    found = find_route(endpoint_id, provider)
    if found is None:
        return _fixture_spec(endpoint_id, provider) or Spec(endpoint_id, None, endpoint_id, "images")
    model, endpoint, route = found
    return Spec(
        endpoint_id,
        model.id,
        model.name,
        endpoint.output,
        _effective_params(model, endpoint, route),
        [*model.rules, *endpoint.rules],
    )


def _fixture_spec(endpoint_id: str, provider: str) -> Spec | None:
    """A platform fixture (fal endpoint, or Replicate model by name or version) as a Spec, or None."""
    from ..catalog.live import CATEGORIES
    from ..catalog.livemodel import params_of
    from ..catalog.openapi import fal_schemas, output_shape, replicate_schemas
    from .platform_docs import fixtures, replicate_by_version, replicate_models

    if provider == "fal":
        item = next((i for i in fixtures()["fal"] if i["endpoint_id"] == endpoint_id), None)
        if item is None:
            return None
        kind = CATEGORIES.get(item["metadata"].get("category", ""), ("image", "t2i"))[0]
        inp, out = fal_schemas(item["openapi"])
        return Spec(endpoint_id, None, item["metadata"]["display_name"], output_shape(out, kind),
                    params_of(inp, kind), schema=inp)
    model = replicate_models().get(endpoint_id.split(":")[0]) or replicate_by_version(endpoint_id.split(":")[-1])
    if model is None or not isinstance(model.get("latest_version"), dict):
        return None
    inp, out = replicate_schemas(model["latest_version"]["openapi_schema"])
    kind = "video" if "video" in f"{model['name']} {model.get('description', '')}".lower() else "image"
    return Spec(endpoint_id, None, f"{model['owner']}/{model['name']}", output_shape(out, kind), params_of(inp, kind),
                schema=inp)


def _schema_errors(schema: dict[str, Any], payload: dict[str, Any]) -> list[dict[str, Any]]:
    """jsonschema's findings as fal's pydantic-style 422 entries."""
    from jsonschema import Draft202012Validator

    out = []
    clean = {k: v for k, v in payload.items() if not k.startswith("_sandbox")}
    for e in Draft202012Validator(schema).iter_errors(clean):
        loc = list(e.absolute_path)
        if e.validator == "required":
            name = str(e.message).split("'")[1] if "'" in str(e.message) else ""
            out.append({"type": "missing", "loc": ["body", *loc, name], "msg": "Field required"})
        elif e.validator == "enum":
            exp = _expected(list(e.validator_value))
            out.append(_err("literal_error", loc, f"Input should be {exp}", e.instance, {"expected": exp}))
        elif e.validator in ("minimum", "exclusiveMinimum"):
            out.append(_err("greater_than_equal", loc, f"Input should be greater than or equal to {e.validator_value}",
                            e.instance, {"ge": e.validator_value}))
        elif e.validator in ("maximum", "exclusiveMaximum"):
            out.append(_err("less_than_equal", loc, f"Input should be less than or equal to {e.validator_value}",
                            e.instance, {"le": e.validator_value}))
        elif e.validator in ("maxItems", "minItems"):
            word = "most" if e.validator == "maxItems" else "least"
            out.append(_err("too_long" if word == "most" else "too_short", loc,
                            f"List should have at {word} {e.validator_value} items after validation", e.instance))
        elif e.validator == "type":
            out.append(_err(f"{e.validator_value}_type" if isinstance(e.validator_value, str) else "type_error", loc,
                            f"Input should be a valid {e.validator_value}", e.instance))
        else:
            out.append(_err("value_error", loc, f"Value error, {e.message}", e.instance))
    return out


def role_values(spec: Spec, payload: dict[str, Any]) -> dict[str, Any]:
    """role -> the value the call uses: what the payload sent, else the parameter's default."""
    out: dict[str, Any] = {}
    for name, key in NAME_ROLES.items():
        if name in payload and name not in spec.params:
            out.setdefault(key, payload[name])
    for name, p in spec.params.items():
        if p.role is None:
            continue
        if name in payload and payload[name] is not None:
            out[p.role] = payload[name]
        elif p.default is not None:
            out.setdefault(p.role, p.default)
    return out


# -- validation ------------------------------------------------------------------------------


def _expected(values: list[Any]) -> str:
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _err(typ: str, loc: list[Any], msg: str, value: Any = None, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"type": typ, "loc": ["body", *loc], "msg": msg, "input": value}
    if ctx:
        e["ctx"] = ctx
    return e


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer()


def _in_enum(v: Any, values: list[Any]) -> bool:
    # string enums match strings only ("5" is not 5): fal's Literal fields do not coerce
    for x in values:
        if isinstance(x, str) and isinstance(v, str) and v == x:
            return True
        if not isinstance(x, str) and not isinstance(v, (str, bool)) and v == x:
            return True
    return False


def _check(name: str, p: Param, v: Any) -> list[dict[str, Any]]:
    t = p.type
    if t in ("string", "image", "video") and not isinstance(v, str):
        return [_err("string_type", [name], "Input should be a valid string", v)]
    if t == "boolean" and not isinstance(v, bool):
        if v in (0, 1, "true", "false", "0", "1"):  # pydantic's lax bool parsing
            return []
        return [_err("bool_type", [name], "Input should be a valid boolean", v)]
    if t == "integer" and not _is_int(v):
        if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
            v = int(v)  # lax mode parses numeric strings
        else:
            return [_err("int_type", [name], "Input should be a valid integer", v)]
    if t == "number" and (isinstance(v, bool) or not isinstance(v, (int, float))):
        return [_err("float_type", [name], "Input should be a valid number", v)]
    if t in ("images", "array") and not isinstance(v, list):
        return [_err("list_type", [name], "Input should be a valid list", v)]
    if t == "object" and not isinstance(v, dict):
        return [_err("dict_type", [name], "Input should be a valid dictionary", v)]
    if t == "size":
        if isinstance(v, dict):
            if not p.custom_size:
                return [_err("literal_error", [name], f"Input should be {_expected(list(p.presets or {}))}", v)]
            return [
                _err("int_type", [name, k], "Input should be a valid integer", v.get(k))
                for k in ("width", "height")
                if not _is_int(v.get(k))
            ]
        if p.presets and v not in p.presets:
            exp = _expected(list(p.presets))
            return [_err("literal_error", [name], f"Input should be {exp}", v, {"expected": exp})]
        return []
    if p.values is not None and not _in_enum(v, p.values):
        exp = _expected(p.values)
        return [_err("literal_error", [name], f"Input should be {exp}", v, {"expected": exp})]
    errors = []
    if t in ("integer", "number") and isinstance(v, (int, float)):
        if p.min is not None and v < p.min:
            msg = f"Input should be greater than or equal to {p.min:g}"
            errors.append(_err("greater_than_equal", [name], msg, v, {"ge": p.min}))
        if p.max is not None and v > p.max:
            msg = f"Input should be less than or equal to {p.max:g}"
            errors.append(_err("less_than_equal", [name], msg, v, {"le": p.max}))
    if isinstance(v, list):
        errors += _length_errors(name, p, v)
        if t == "images":
            errors += [_err("string_type", [name, i], "Input should be a valid string", x)
                       for i, x in enumerate(v) if not isinstance(x, str)]
    return errors


def _length_errors(name: str, p: Param, v: list[Any]) -> list[dict[str, Any]]:
    n, out = len(v), []
    for typ, bound, word in (("too_short", p.min_items, "least"), ("too_long", p.max_items, "most")):
        if bound is None or (n >= bound if typ == "too_short" else n <= bound):
            continue
        msg = f"List should have at {word} {bound} item{'' if bound == 1 else 's'} after validation, not {n}"
        key = "min_length" if typ == "too_short" else "max_length"
        out.append(_err(typ, [name], msg, v, {"field_type": "List", key: bound, "actual_length": n}))
    return out


def _set(payload: dict[str, Any], name: str) -> bool:
    return payload.get(name) not in (None, "", [])


def _rule_errors(rule: Rule, payload: dict[str, Any]) -> list[dict[str, Any]]:
    bad = None
    if rule.exactly_one and sum(_set(payload, n) for n in rule.exactly_one) != 1:
        bad = f"exactly one of {', '.join(rule.exactly_one)} must be provided"
    elif rule.at_most_one and sum(_set(payload, n) for n in rule.at_most_one) > 1:
        bad = f"at most one of {', '.join(rule.at_most_one)} may be provided"
    elif rule.requires:
        for name, needs in rule.requires.items():
            missing = [n for n in needs if not _set(payload, n)]
            if _set(payload, name) and missing:
                bad = f"{name} requires {', '.join(missing)}"
    if bad is None:
        return []
    return [_err("value_error", [], f"Value error, {rule.message or bad}", None)]


def validate(spec: Spec, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """pydantic-style error entries for `payload` (empty when it is valid). Unknown fields are ignored."""
    if spec.schema is not None:
        return _schema_errors(spec.schema, payload)
    errors: list[dict[str, Any]] = []
    for name, p in spec.params.items():
        if name not in payload or payload[name] is None:
            if p.required:
                errors.append({"type": "missing", "loc": ["body", name], "msg": "Field required"})
            continue
        errors += _check(name, p, payload[name])
    for rule in spec.rules:
        errors += _rule_errors(rule, payload)
    return errors


# -- inputs and directives -------------------------------------------------------------------


def input_urls(payload: Any, loc: tuple[Any, ...] = ()) -> list[tuple[list[Any], str]]:
    """Every file URL in the payload: values of fields named *_url / *_urls, at any depth."""
    found: list[tuple[list[Any], str]] = []
    if isinstance(payload, dict):
        for k, v in payload.items():
            if isinstance(k, str) and (k.endswith("_url") or k.endswith("_urls")):
                for i, u in enumerate(v if isinstance(v, list) else [v]):
                    if isinstance(u, str) and u:
                        found.append(([*loc, k, i] if isinstance(v, list) else [*loc, k], u))
            elif isinstance(v, (dict, list)):
                found += input_urls(v, (*loc, k))
    elif isinstance(payload, list):
        for i, v in enumerate(payload):
            found += input_urls(v, (*loc, i))
    return found


def download_error(loc: list[Any], url: str) -> dict[str, Any]:
    return {
        "loc": ["body", *loc],
        "msg": "Failed to download the file. Please check if the URL is accessible and try again.",
        "type": "file_download_error",
        "url": FAL_ERRORS + "file_download_error",
        "input": url if len(url) < 200 else url[:200] + "...",
    }


def safety_error(loc: list[Any], value: Any) -> dict[str, Any]:
    return {
        "loc": ["body", *loc],
        "msg": "The content could not be processed because it contained material flagged by a content checker.",
        "type": "content_policy_violation",
        "url": FAL_ERRORS + "content_policy_violation",
        "input": value,
    }


_DIRECTIVE = re.compile(r"\[sandbox:([a-z][a-z0-9_-]*)(?:=([^\]\s]*))?\]", re.IGNORECASE)


@dataclass
class Directives:
    """Instructions hidden in a prompt, so a person in the MCP inspector can trigger faults."""

    unsafe: bool = False  # safety refusal on the prompt
    unsafe_image: bool = False  # safety refusal on the first input image
    slow: float | None = None  # IN_PROGRESS for this many seconds
    queue: float | None = None  # IN_QUEUE for this many seconds
    stuck: bool = False  # IN_QUEUE until cancelled
    error: int | None = None  # fail with 500 / 503 / 504
    bytes: int | None = None  # huge output of this many filler bytes


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for x in v.values() for s in _strings(x)]
    if isinstance(v, list):
        return [s for x in v for s in _strings(x)]
    return []


def directives(payload: dict[str, Any]) -> Directives:
    d = Directives()
    for text in _strings(payload):
        if "[sandbox:" not in text.lower():
            continue
        for name, arg in _DIRECTIVE.findall(text):
            name = name.lower().replace("_", "-")
            try:
                if name == "unsafe":
                    d.unsafe = True
                elif name == "unsafe-image":
                    d.unsafe_image = True
                elif name == "slow":
                    d.slow = float(arg or 5)
                elif name == "queue":
                    d.queue = float(arg or 2)
                elif name == "stuck":
                    d.stuck = True
                elif name == "error":
                    d.error = int(arg or 500)
                elif name == "bytes":
                    d.bytes = int(float(arg))
            except ValueError:
                pass  # a malformed directive is just prompt text
    return d
