"""`aivp models --check-live`: every curated route compared with what its provider says now.

For each curated fal and Replicate route: the endpoint still exists and is active; every parameter the
catalog declares still exists with a compatible type, every value of a curated enum is still allowed,
a curated range does not reach past the live one, list lengths agree; no field the catalog does not know
became required; the unit price did not move by more than 10%. A difference that would make a call fail
(an endpoint gone or deprecated, a parameter or enum value gone, an incompatible type, a narrower range,
a new required field) is *breaking*; a price change or a default that moved is reported but is not.
BytePlus routes have no live source and are counted as not checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import AivpError, UnknownModelError
from . import catalog, effective_params, effective_pricing
from .live import LiveCatalog, LiveEndpoint
from .livemodel import UNITS
from .livesearch import prefetch
from .openapi import simple, type_of, variants
from .schema import Param

PRICE_TOLERANCE = 0.10
COMPATIBLE = {  # catalog parameter type -> JSON Schema types that take its values
    "string": {"string"}, "integer": {"integer", "number"}, "number": {"number"}, "boolean": {"boolean"},
    "image": {"string"}, "video": {"string"}, "file": {"string"}, "images": {"array"}, "videos": {"array"},
    "files": {"array"}, "array": {"array"}, "object": {"object"}, "size": {"string", "object"},
}


@dataclass(frozen=True)
class Difference:
    model: str
    endpoint: str
    what: str  # "endpoint", "status", "param <name>", "price" ...
    curated: str
    live: str
    breaking: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _types(prop: dict[str, Any]) -> set[str]:
    return {type_of(simple(a)) for a in variants(prop)}


def _enum(prop: dict[str, Any]) -> list[Any] | None:
    values = [v for a in variants(prop) for v in a.get("enum") or []]
    open_form = any(not a.get("enum") for a in variants(prop))  # a union with a free form takes more than the enum
    return None if open_form or not values else values


def compare_param(name: str, p: Param, prop: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(what, curated, live, breaking) for one parameter."""
    out: list[tuple[str, str, str, bool]] = []
    live_types = _types(prop)
    if "any" not in live_types and p.type in COMPATIBLE and not (COMPATIBLE[p.type] & live_types):
        out.append((f"param {name}", p.type, "/".join(sorted(live_types)), True))
        return out
    live_values = _enum(prop)
    if p.values and live_values is not None:
        gone = [v for v in p.values if not any(str(v) == str(x) for x in live_values)]
        if gone:
            out.append((f"param {name} values", ", ".join(map(str, gone)), "allowed: " + ", ".join(map(str, live_values)), True))
    s = simple(prop)
    low = s.get("minimum", s.get("exclusiveMinimum"))
    high = s.get("maximum", s.get("exclusiveMaximum"))
    if p.min is not None and isinstance(low, int | float) and p.min < low:
        out.append((f"param {name} min", f"{p.min:g}", f"{low:g}", True))
    if p.max is not None and isinstance(high, int | float) and p.max > high:
        out.append((f"param {name} max", f"{p.max:g}", f"{high:g}", True))
    max_items = s.get("maxItems")
    if p.max_items is not None and isinstance(max_items, int) and p.max_items > max_items:
        out.append((f"param {name} max_items", str(p.max_items), str(max_items), True))
    live_default = s.get("default")
    if p.default is not None and live_default is not None and str(p.default) != str(live_default) \
            and not isinstance(live_default, dict | list):
        out.append((f"param {name} default", str(p.default), str(live_default), False))
    return out


def compare(model_id: str, route_id: str, params: dict[str, Param], price: tuple[str, float] | None,
            ep: LiveEndpoint | None) -> list[Difference]:
    def diff(what: str, curated: str, live: str, breaking: bool) -> Difference:
        return Difference(model_id, route_id, what, curated, live, breaking)

    if ep is None:
        return [diff("endpoint", "listed", "gone (the model API does not list it)", True)]
    found: list[Difference] = []
    if ep.status != "active":
        found.append(diff("status", "active", ep.status, True))
    if ep.schema_error:
        return [*found, diff("schema", "-", f"unavailable: {ep.schema_error}", False)]
    props = ep.input.get("properties") or {}
    for name, p in params.items():
        if name not in props:
            found.append(diff(f"param {name}", p.type, "gone", True))
            continue
        found += [diff(*row) for row in compare_param(name, p, props[name] if isinstance(props[name], dict) else {})]
    for name in ep.input.get("required") or []:
        if name not in params:
            found.append(diff(f"param {name}", "not in the catalog", "required", True))
    if price is not None and ep.price is not None:
        unit, curated = price
        live_unit = _unit(ep.price.unit)
        if live_unit == unit and curated > 0 and abs(ep.price.unit_price - curated) / curated > PRICE_TOLERANCE:
            found.append(diff("price", f"${curated:g}/{unit}", f"${ep.price.unit_price:g}/{unit}", False))
        elif live_unit != unit:
            found.append(diff("price unit", unit, ep.price.unit, False))
    return found


async def check_live(live: LiveCatalog) -> tuple[list[Difference], dict[str, int], list[str]]:
    """(differences, counts, notes) for every curated route the live layer can read."""
    routes = [(m, e, r) for m in catalog().models if m.active for e in m.endpoints for r in e.routes]
    fal_ids = list(dict.fromkeys(r.endpoint for _, _, r in routes if r.provider == "fal"))
    notes = []
    if live.fal is not None and fal_ids:
        note = await prefetch(live, fal_ids, force=True)
        if note:
            notes.append(note)
    found: list[Difference] = []
    counts = {"checked": 0, "not_checked": 0}
    seen: set[tuple[str, str]] = set()
    for m, e, r in routes:
        if (r.provider, r.endpoint) in seen:
            continue
        seen.add((r.provider, r.endpoint))
        source = live.fal if r.provider == "fal" else live.replicate if r.provider == "replicate" else None
        if source is None:
            counts["not_checked"] += 1
            continue
        counts["checked"] += 1
        try:
            ep: LiveEndpoint | None = await live.endpoint(r.endpoint, r.provider)
        except UnknownModelError:
            ep = None
        except AivpError as exc:  # one unreadable entry is a note, not the end of the check
            notes.append(f"{r.endpoint}: could not be read ({exc})")
            continue
        if ep is not None and ep.stale:
            notes.append(f"{r.endpoint}: {ep.stale}")
        pricing = effective_pricing(m, e, r)
        found += compare(m.id, r.endpoint, effective_params(m, e, r), (pricing.unit, pricing.price), ep)
    return found, counts, notes


def _unit(text: str) -> str:
    """A pricing-API unit in the catalog's words ("megapixels" -> megapixel, "million video tokens" -> video_token)."""
    unit = text.lower().removeprefix("per ").strip()
    if "token" in unit and ("video" in unit or "million" in unit or unit.startswith("1m")):
        return "video_token"
    return UNITS.get(unit, unit)


def table(found: list[Difference]) -> str:
    """The differences as an aligned text table (breaking ones first)."""
    rows = [("model", "endpoint", "difference", "catalog", "live", "breaks calls")]
    for d in sorted(found, key=lambda d: (not d.breaking, d.model, d.endpoint, d.what)):
        rows.append((d.model, d.endpoint, d.what, d.curated, d.live, "YES" if d.breaking else "no"))
    widths = [min(48, max(len(r[i]) for r in rows)) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c[:48].ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
