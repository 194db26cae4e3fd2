"""Checking a native payload against an endpoint's JSON Schema (the `jsonschema` library), before any submit.

The schema is the provider's own (refs inlined by `openapi.py`), so what passes here is what the
provider declared it takes: types, enums, ranges, required fields, array lengths, nested objects.
Errors are turned into one sentence per problem that names the field, the tool argument that fed it
and the valid values, e.g. "resolution='8k' is not allowed; choose one of '480p', '720p'".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidParameterError
from ..inputs import InputRef, map_inputs

PLACEHOLDER = "https://upload.aivp.invalid/{name}"  # an input not uploaded yet: any URL satisfies the schema
MAX_ERRORS = 3


def validate(label: str, schema: dict[str, Any], payload: dict[str, Any], args: Mapping[str, str]) -> None:
    """Raise InvalidParameterError naming every problem (at most a few) of `payload`; `args` maps a field
    to the tool argument that set it ("image_url" -> "image"), for messages."""
    from jsonschema import Draft202012Validator  # imported on first use: start-up stays light

    wire = map_inputs(payload, lambda r: PLACEHOLDER.format(name=(r.rel or "input").rsplit("/", 1)[-1]))
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(wire), key=lambda e: (len(e.absolute_path), str(list(e.absolute_path))))
    if not errors:
        return
    seen: set[str] = set()
    unique = []
    for e in errors:  # one sentence per field: an enum miss is often also a type miss
        where = str(list(e.absolute_path)) + (e.message if e.validator == "required" else "")
        if where not in seen:
            seen.add(where)
            unique.append(e)
    errors = unique
    fields = ", ".join(sorted((schema.get("properties") or {}).keys()))
    said = [_say(e, args) for e in errors[:MAX_ERRORS]]
    more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
    raise InvalidParameterError(f"{label}: " + " ".join(said) + more +
                                f" Nothing was sent. Its fields: {fields}; search_models(model=...) lists their values.")


def _where(error: Any, args: Mapping[str, str]) -> str:
    path = [str(p) for p in error.absolute_path]
    if not path:
        return "the input"
    name = ".".join(path)
    arg = args.get(path[0])
    return f"{name} (the {arg} argument)" if arg and arg != path[0] and len(path) == 1 else name


def _show(v: Any) -> str:
    if isinstance(v, str):
        return repr(v if len(v) <= 60 else v[:57] + "...")
    if isinstance(v, InputRef):
        return repr(v.raw)
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _say(e: Any, args: Mapping[str, str]) -> str:
    where = _where(e, args)
    v = e.instance
    kind = e.validator
    s = e.schema if isinstance(e.schema, dict) else {}
    if kind == "enum":
        return f"{where}={_show(v)} is not allowed; choose one of {', '.join(_show(x) for x in e.validator_value)}."
    if kind == "const":
        return f"{where} must be {_show(e.validator_value)}, not {_show(v)}."
    if kind == "required":
        missing = str(e.message).split("'")[1] if "'" in str(e.message) else str(e.message)
        sub = (s.get("properties") or {}).get(missing) or {}
        arg = args.get(missing) if not e.absolute_path else None
        about = " ".join(str(sub.get("description") or "").split())[:120]
        who = f"{missing} (the {arg} argument)" if arg and arg != missing else missing
        inside = f" in {'.'.join(str(p) for p in e.absolute_path)}" if e.absolute_path else ""
        return f"{who} is required{inside}" + (f": {about.rstrip('.')}." if about else ".")
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where}={_show(v)} is out of range; it must be {_range(s)}."
    if kind in ("minItems", "maxItems"):
        n = len(v) if isinstance(v, list) else 0
        bound = e.validator_value
        return (f"{where} takes at most {bound} item(s); {n} were given." if kind == "maxItems" else
                f"{where} needs at least {bound} item(s); {n} were given.")
    if kind in ("minLength", "maxLength"):
        return f"{where} must be {'at most' if kind == 'maxLength' else 'at least'} {e.validator_value} characters long."
    if kind == "type":
        want = e.validator_value if isinstance(e.validator_value, str) else " or ".join(e.validator_value)
        return f"{where} must be of type {want}, not {_show(v)}."
    if kind in ("anyOf", "oneOf"):
        options = [_enum_of(x) for x in e.validator_value if isinstance(x, dict)]
        named = [x for o in options for x in o]
        if named:
            return f"{where}={_show(v)} is not allowed; choose one of {', '.join(_show(x) for x in named)} " \
                   "(or the object form the schema describes)."
        return f"{where}={_show(v)} matches none of the forms the schema allows."
    if kind == "additionalProperties":
        return f"{where} has fields the schema does not allow ({e.message})."
    return f"{where}: {e.message}."


def _enum_of(s: dict[str, Any]) -> list[Any]:
    return list(s.get("enum") or ([s["const"]] if "const" in s else []))


def _range(s: dict[str, Any]) -> str:
    low = s.get("minimum", s.get("exclusiveMinimum"))
    high = s.get("maximum", s.get("exclusiveMaximum"))
    lo_word = "more than" if "exclusiveMinimum" in s else "at least"
    hi_word = "less than" if "exclusiveMaximum" in s else "at most"
    if low is not None and high is not None:
        return f"{lo_word} {low:g} and {hi_word} {high:g}"
    return f"{lo_word} {low:g}" if low is not None else f"{hi_word} {high:g}"
