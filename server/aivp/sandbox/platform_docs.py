"""What the sandbox's platform API knows: every curated fal route (its OpenAPI derived from the
catalog) and the fixtures in `fixtures/platform.json` (fal endpoints and Replicate models that are
*not* in the catalog, shaped like the real answers). Submits to a fixture endpoint are validated
against that same schema (jsonschema) and answered in fal's 422 `detail` shape.

`Drift` lets a test change what the platform says about an endpoint (an enum value gone, a field
removed, a new status or price, the endpoint gone) to exercise `aivp models --check-live`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..catalog import catalog, effective_params, effective_pricing
from ..catalog.schema import Endpoint, Model, Param, Route

FIXTURES = Path(__file__).with_name("fixtures") / "platform.json"
TASK_CATEGORY = {"t2i": "text-to-image", "edit": "image-to-image", "i2i": "image-to-image", "inpaint": "image-to-image",
                 "upscale": "image-to-image", "t2v": "text-to-video", "i2v": "image-to-video",
                 "first-last-frame": "image-to-video", "reference-to-video": "image-to-video", "v2v": "video-to-video",
                 "multi-shot": "text-to-video"}
UNITS = {"image": "images", "megapixel": "megapixels", "second": "seconds", "call": "requests",
         "video_token": "million video tokens"}


@cache
def fixtures() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURES.read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------- curated routes as platform answers

def _prop(p: Param) -> dict[str, Any]:
    t = p.type
    s: dict[str, Any] = {}
    if t in ("image", "video", "file"):
        s = {"type": "string"}
    elif t in ("images", "videos", "files"):
        s = {"type": "array", "items": {"type": "string"}}
    elif t == "size":
        presets: dict[str, Any] = {"type": "string", "enum": list(p.presets or {})}
        s = {"anyOf": [{"$ref": "#/components/schemas/ImageSize"}, presets]} if p.custom_size else presets
    elif t in ("string", "integer", "number", "boolean", "array", "object"):
        s = {"type": t}
    else:
        s = {}
    if p.values and t != "size":
        s["enum"] = [v for v in p.values]
    bounds: tuple[tuple[str, float | None], ...] = (("minimum", p.min), ("maximum", p.max),
                                                   ("minItems", p.min_items), ("maxItems", p.max_items))
    for key, value in bounds:
        if value is not None:
            s[key] = int(value) if float(value).is_integer() and t != "number" else value
    if p.default is not None:
        s["default"] = p.default
    if p.description:
        s["description"] = p.description
    return s


def _output(shape: str) -> dict[str, Any]:
    if shape == "video":
        return {"type": "object", "required": ["video"], "properties": {"video": {"allOf": [{"$ref": "#/components/schemas/File"}]}}}
    if shape == "image":
        return {"type": "object", "required": ["image"], "properties": {"image": {"$ref": "#/components/schemas/Image"}}}
    return {"type": "object", "required": ["images"], "properties": {
        "images": {"type": "array", "items": {"$ref": "#/components/schemas/Image"}}, "seed": {"type": "integer"}}}


def openapi_for(eid: str, params: dict[str, Param], shape: str) -> dict[str, Any]:
    """An OpenAPI document like fal's for a curated route (input from its catalog parameters)."""
    base = fixtures()["fal"][0]["openapi"]["components"]["schemas"]
    inp = {"type": "object", "x-fal-order-properties": list(params), "properties": {n: _prop(p) for n, p in params.items()},
           "required": [n for n, p in params.items() if p.required]}
    schemas = {"Input": inp, "Output": _output(shape), "File": base["File"], "Image": base["Image"],
               "ImageSize": fixtures()["fal"][1]["openapi"]["components"]["schemas"]["ImageSize"]}
    ok = {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Output"}}}}}
    return {"openapi": "3.0.4", "info": {"title": eid, "version": "1.0.0"}, "components": {"schemas": schemas},
            "paths": {f"/{eid}": {"post": {"requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Input"}}}}}},
                f"/{eid}/requests/{{request_id}}": {"get": {"responses": ok}}}}


def _curated_item(m: Model, e: Endpoint, r: Route) -> dict[str, Any]:
    pricing = effective_pricing(m, e, r)
    return {"endpoint_id": r.endpoint,
            "metadata": {"display_name": m.name, "category": TASK_CATEGORY.get(e.task, "text-to-image"),
                         "description": m.summary, "status": "active" if m.active else "deprecated", "tags": m.tags,
                         "kind": "inference", "model_url": f"https://fal.run/{r.endpoint}"},
            "openapi": openapi_for(r.endpoint, effective_params(m, e, r), e.output),
            "price": {"unit_price": pricing.price, "unit": UNITS[pricing.unit], "currency": "USD"}}


@cache
def _base_items() -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    for m in catalog().models:
        for e in m.endpoints:
            for r in e.routes:
                if r.provider == "fal" and r.endpoint not in items:
                    items[r.endpoint] = _curated_item(m, e, r)
    for item in fixtures()["fal"]:
        items[item["endpoint_id"]] = item
    return items


# ---------------------------------------------------------------- drift (what tests plant)

@dataclass
class Drift:
    """Changes to what the sandbox's platform API says, by endpoint id."""

    gone: set[str] = field(default_factory=set)
    status: dict[str, str] = field(default_factory=dict)
    price: dict[str, float | None] = field(default_factory=dict)
    drop_values: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # endpoint -> field -> values
    drop_fields: dict[str, list[str]] = field(default_factory=dict)

    def clear(self) -> None:
        self.gone.clear()
        self.status.clear()
        self.price.clear()
        self.drop_values.clear()
        self.drop_fields.clear()


def items(drift: Drift) -> list[dict[str, Any]]:
    """Every fal endpoint the platform lists, with the planted drift applied."""
    out = []
    for eid, item in _base_items().items():
        if eid in drift.gone:
            continue
        if eid in drift.status or eid in drift.price or eid in drift.drop_values or eid in drift.drop_fields:
            item = copy.deepcopy(item)
            if eid in drift.status:
                item["metadata"]["status"] = drift.status[eid]
            if eid in drift.price:
                new = drift.price[eid]
                item["price"] = None if new is None else {**(item.get("price") or {"unit": "images"}), "unit_price": new}
            inp = item["openapi"]["components"]["schemas"]
            inp = inp.get("Input") or next(v for k, v in inp.items() if k.endswith("Input"))
            for name, gone_values in drift.drop_values.get(eid, {}).items():
                prop = inp["properties"].get(name, {})
                if "enum" in prop:
                    prop["enum"] = [v for v in prop["enum"] if v not in gone_values]
            for name in drift.drop_fields.get(eid, []):
                inp["properties"].pop(name, None)
                inp["required"] = [n for n in inp.get("required", []) if n != name]
        out.append(item)
    return out


def etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest()[:24] + '"'


# ---------------------------------------------------------------- Replicate models

@cache
def replicate_models() -> dict[str, dict[str, Any]]:
    """owner/name -> model object (fixtures, then curated Replicate routes with a schema from the catalog)."""
    models: dict[str, dict[str, Any]] = {f"{m['owner']}/{m['name']}": m for m in fixtures()["replicate"]}
    for m in catalog().models:
        for e in m.endpoints:
            for r in e.routes:
                if r.provider != "replicate" or ":" in r.endpoint or r.endpoint in models:
                    continue
                owner, name = r.endpoint.split("/")
                params = effective_params(m, e, r)
                schema = {"openapi": "3.0.2", "components": {"schemas": {
                    "Input": {"type": "object", "title": "Input", "properties": {
                        n: {**_prop(p), "x-order": i} for i, (n, p) in enumerate(params.items())},
                        "required": [n for n, p in params.items() if p.required]},
                    "Output": {"type": "array", "items": {"type": "string", "format": "uri"}}}}}
                vid = hashlib.sha256(r.endpoint.encode()).hexdigest()
                models[r.endpoint] = {"owner": owner, "name": name, "description": m.summary, "visibility": "public",
                                      "latest_version": {"id": vid, "openapi_schema": schema}}
    return models


def replicate_by_version(version: str) -> dict[str, Any] | None:
    return next((m for m in replicate_models().values() if (m.get("latest_version") or {}).get("id") == version), None)
