"""Reading a provider's OpenAPI: the input and output schemas of one endpoint, as plain JSON Schema.

fal serves one OpenAPI 3.0 document per endpoint (submit body, result body, `$ref`s into
`components/schemas`, `x-fal-order-properties`); Replicate gives each model version an
`openapi_schema` whose `Input` / `Output` components describe a prediction (`x-order` on each
property, `format: uri` for files). Both are turned into self-contained JSON Schema here: every
`$ref` inlined (a cycle is cut), OpenAPI's `nullable` and boolean `exclusiveMinimum` rewritten, so
`jsonschema` validates against exactly what the provider declared. From the result come the compact
parameter cards tools show (names, types, enums, ranges, defaults, required; never the document),
which fields take files, and where the output files are.
"""

from __future__ import annotations

import re
from typing import Any

MAX_DEPTH = 12
DESCRIPTION_CHARS = 160
URL_NAME = re.compile(r"(_url|_urls|_uri|_uris)$")
VIDEO_WORDS = ("video", "clip", "footage")
AUDIO_WORDS = ("audio", "voice", "music", "sound", "speech", "song")
IMAGE_WORDS = ("image", "frame", "mask", "img", "photo", "picture", "reference", "face", "style", "sketch")


# ---------------------------------------------------------------- $ref resolution and OpenAPI -> JSON Schema

def _lookup(root: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def inline(node: Any, root: dict[str, Any], seen: tuple[str, ...] = (), depth: int = 0) -> Any:
    """`node` with every local `$ref` replaced by what it points at (a cycle or an unknown ref becomes {})."""
    if depth > MAX_DEPTH * 4:
        return {}
    if isinstance(node, list):
        return [inline(x, root, seen, depth + 1) for x in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = _lookup(root, ref)
        if target is None or ref in seen or len(seen) >= MAX_DEPTH:
            out: dict[str, Any] = {"title": ref.rsplit("/", 1)[-1]} if target is not None else {}
        else:
            out = dict(inline(target, root, (*seen, ref), depth + 1))
        for k, v in node.items():  # siblings of $ref (description, default) describe the use site
            if k != "$ref":
                out[k] = inline(v, root, seen, depth + 1)
        return _normalize(out)
    return _normalize({k: inline(v, root, seen, depth + 1) for k, v in node.items()})


def _normalize(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0 spellings that JSON Schema reads differently."""
    if schema.pop("nullable", False) is True:
        if isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]
        elif "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
    for bound, strict in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(schema.get(strict), bool):
            if schema.pop(strict) and bound in schema:
                schema[strict] = schema.pop(bound)
    return schema


# ---------------------------------------------------------------- where the input and output schemas are

def fal_schemas(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input schema, output schema) of a fal endpoint's OpenAPI document, refs inlined."""
    comps = (doc.get("components") or {}).get("schemas") or {}
    inp = out = None
    for path, ops in (doc.get("paths") or {}).items():
        if not isinstance(ops, dict):
            continue
        post = ops.get("post")
        if isinstance(post, dict) and inp is None and "/requests/" not in path:
            inp = _json_schema((post.get("requestBody") or {}).get("content"))
        get = ops.get("get")
        if isinstance(get, dict) and out is None and path.rstrip("/").endswith("{request_id}"):
            ok = (get.get("responses") or {}).get("200") or {}
            out = _json_schema(ok.get("content") if isinstance(ok, dict) else None)
    if inp is None:
        inp = _by_suffix(comps, "Input")
    if out is None:
        out = _by_suffix(comps, "Output")
    return _object(inline(inp or {}, doc)), _object(inline(out or {}, doc))


def replicate_schemas(openapi: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input schema, output schema) of a Replicate version's `openapi_schema`."""
    comps = (openapi.get("components") or {}).get("schemas") or {}
    inp = comps.get("Input") or {}
    out = comps.get("Output") or {}
    return _object(inline(inp, openapi)), inline(out, openapi) if isinstance(out, dict) else {}


def _json_schema(content: Any) -> Any:
    if not isinstance(content, dict):
        return None
    body = content.get("application/json") or next(iter(content.values()), None)
    return body.get("schema") if isinstance(body, dict) else None


def _by_suffix(comps: dict[str, Any], suffix: str) -> dict[str, Any] | None:
    """The component named ...Input (...Output) that no other such component uses (the top-level one)."""
    names = [n for n in comps if n.endswith(suffix)]
    used = {m for n in names for m in re.findall(r"#/components/schemas/([\w.-]+)", str(comps[n]))}
    top = [n for n in names if n not in used] or names
    return {"$ref": f"#/components/schemas/{top[0]}"} if top else None


def _object(schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict) and ("properties" in schema or schema.get("type") == "object"):
        return schema
    return {"type": "object", "properties": {}}


# ---------------------------------------------------------------- reading properties

def order(schema: dict[str, Any]) -> list[str]:
    """Property names in the provider's order (x-fal-order-properties, else x-order, else as declared)."""
    props = schema.get("properties") or {}
    names = [n for n in schema.get("x-fal-order-properties") or [] if n in props]
    if not names and any(isinstance(p, dict) and "x-order" in p for p in props.values()):
        names = sorted(props, key=lambda n: (props[n] or {}).get("x-order", 1_000))
    return [*names, *(n for n in props if n not in names)]


def _flat(prop: dict[str, Any]) -> dict[str, Any]:
    """A one-item allOf (pydantic's and cog's way of typing a field by a referenced schema) merged in."""
    all_of = prop.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        return {**all_of[0], **{k: v for k, v in prop.items() if k != "allOf"}}
    return prop


def variants(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a union (anyOf / oneOf), nulls dropped; [prop] when it is not one."""
    prop = _flat(prop)
    alts = prop.get("anyOf") or prop.get("oneOf")
    if not isinstance(alts, list):
        return [prop]
    kept = [_flat(a) for a in alts if isinstance(a, dict) and a.get("type") != "null"]
    return kept or [prop]


def simple(prop: dict[str, Any]) -> dict[str, Any]:
    """A nullable union reduced to its one real alternative (with the outer description and default)."""
    prop = _flat(prop)
    alts = variants(prop)
    if len(alts) == 1 and alts[0] is not prop:
        return {**alts[0], **{k: v for k, v in prop.items() if k not in ("anyOf", "oneOf")}}
    return prop


def type_of(prop: dict[str, Any]) -> str:
    t = prop.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    if t is None and "enum" in prop:
        values = [v for v in prop["enum"] if v is not None]
        t = "string" if all(isinstance(v, str) for v in values) else "integer" if all(
            isinstance(v, int) and not isinstance(v, bool) for v in values) else "number"
    if t is None and "properties" in prop:
        t = "object"
    return str(t) if t else "any"


def media_kind(name: str, prop: dict[str, Any]) -> tuple[str, bool] | None:
    """("image" | "video" | "file", is_list) when the field takes file URLs, else None."""
    p = simple(prop)
    many = type_of(p) == "array"
    item = simple(p.get("items") or {}) if many else p
    if type_of(item) != "string" or "enum" in item:
        return None
    text = f"{name} {p.get('title', '')}".lower()
    about = str(p.get("description", "")).lower()
    urlish = bool(URL_NAME.search(name)) or item.get("format") in ("uri", "url", "binary", "data-url") or (
        "url" in about and any(w in text for w in (*IMAGE_WORDS, *VIDEO_WORDS, *AUDIO_WORDS)))
    if not urlish:
        return None
    if any(w in text for w in VIDEO_WORDS):
        return "video", many
    if any(w in text for w in AUDIO_WORDS):
        return "file", many
    if any(w in text for w in IMAGE_WORDS):
        return "image", many
    return "file", many


def card(name: str, prop: dict[str, Any], required: bool) -> dict[str, Any]:
    """One parameter, compact: name, type, required, default, enum, range, item counts, files, description."""
    p = simple(prop)
    media = media_kind(name, prop)
    out: dict[str, Any] = {"name": name}
    if media:
        out["type"] = f"{media[0]} url" + ("s" if media[1] else "")
    else:
        alts = variants(prop)
        out["type"] = " | ".join(dict.fromkeys(_short_type(a) for a in alts)) if len(alts) > 1 else _short_type(p)
    if required:
        out["required"] = True
    if "default" in p and p["default"] is not None:
        out["default"] = p["default"]
    values = _enum(prop)
    if values:
        out["values"] = values
    for key, short in (("minimum", "min"), ("maximum", "max"), ("exclusiveMinimum", "min_exclusive"),
                       ("exclusiveMaximum", "max_exclusive"), ("minItems", "min_items"), ("maxItems", "max_items"),
                       ("maxLength", "max_length")):
        if isinstance(p.get(key), int | float) and not isinstance(p.get(key), bool):
            out[short] = p[key]
    text = " ".join(str(p.get("description") or prop.get("description") or "").split())
    if text:
        out["description"] = text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1] + "…"
    return out


def _short_type(p: dict[str, Any]) -> str:
    t = type_of(p)
    if t == "array":
        inner = simple(p.get("items") or {})
        return f"array<{inner.get('title') or type_of(inner)}>"
    if t == "object" and p.get("title"):
        return f"object ({p['title']})"
    return t


def _enum(prop: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for alt in variants(prop):
        for v in alt.get("enum") or ([alt["const"]] if "const" in alt else []):
            if v is not None and v not in found:
                found.append(v)
    return found


def cards(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required") or [])
    props = schema.get("properties") or {}
    return [card(n, props[n] if isinstance(props[n], dict) else {}, n in required) for n in order(schema)]


# ---------------------------------------------------------------- outputs

FILE_KEYS = ("url", "uri")


def _is_file(schema: dict[str, Any]) -> bool:
    s = simple(schema)
    props = s.get("properties") or {}
    return any(k in props for k in FILE_KEYS) or (type_of(s) == "string" and s.get("format") in ("uri", "url"))


def output_files(schema: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(field, "video" | "image" | "file", is_list) for each output field holding files."""
    found: list[tuple[str, str, bool]] = []
    if _is_file(schema):  # Replicate: the output itself is a URI
        found.append(("output", "file", False))
    elif type_of(simple(schema)) == "array" and _is_file(simple(schema).get("items") or {}):
        found.append(("output", "file", True))
    for name in order(schema):
        prop = simple((schema.get("properties") or {})[name] or {})
        many = type_of(prop) == "array"
        item = simple(prop.get("items") or {}) if many else prop
        if not _is_file(item):
            continue
        words = f"{name} {item.get('title', '')}".lower()
        kind = "video" if any(w in words for w in VIDEO_WORDS) else "image" if any(
            w in words for w in ("image", "img", "frame", "picture")) else "file"
        found.append((name, kind, many))
    return found


def output_shape(schema: dict[str, Any], kind: str) -> str:
    """The shape the job runner reads a result by: "video", "images" or "image"."""
    files = output_files(schema)
    names = {f[0] for f in files}
    if kind == "video" or any(f[1] == "video" for f in files):
        return "video"
    if "images" in names or any(f[2] for f in files):
        return "images"
    return "image"
