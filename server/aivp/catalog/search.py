"""Ranking models for a task, budget and capabilities; and a model's full card.

The same data backs `search_models`, the `aivp://models` resources, `aivp models` and the
generated references/models*.md.
"""

from __future__ import annotations

from typing import Any, Literal

from . import catalog, effective_params, effective_pricing, resolve
from .pricing import price_text as pricing_text
from .pricing import typical
from .routing import CONSISTENCY_RANK, tasks_of
from .schema import Model, Param

Prefer = Literal["balanced", "quality", "price", "speed"]


def summary(m: Model, available: set[str] | None = None) -> dict[str, Any]:
    est = typical(m)
    providers = sorted({r.provider for e in m.endpoints for r in e.routes})
    out: dict[str, Any] = {
        "id": m.id,
        "name": m.name,
        "kind": m.kind,
        "tasks": tasks_of(m),
        "summary": m.summary,
        "tier": m.tier,
        "speed": m.speed,
        "quality": m.quality,
        "consistency": m.consistency,
        "tags": m.tags,
        "price": price_text(m),
        "typical_cost_usd": round(est.usd, 4),
        "typical_call": est.detail,
        "providers": providers,
        "aliases": m.aliases,
    }
    if available is not None:
        out["usable_now"] = any(p in available for p in providers)
    if not m.active:
        out["status"] = "retired"
    return out


def price_text(m: Model) -> str:
    return pricing_text(m.pricing)


def curated_endpoints() -> set[str]:
    """Every provider endpoint id the curated catalog routes to (lower case), to keep them out of live results."""
    return {r.endpoint.lower() for m in catalog().models for e in m.endpoints for r in e.routes}


def search(
    *,
    task: str | None = None,
    query: str | None = None,
    capabilities: list[str] | None = None,
    max_price_usd: float | None = None,
    min_consistency: str | None = None,
    tier: str | None = None,
    prefer: Prefer = "balanced",
    limit: int = 8,
    available: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Models that fit, best first. Price is the cost of a typical call (one image, a default clip)."""
    found = []
    words = [w for w in (query or "").lower().split() if w]
    caps = {c.lower() for c in capabilities or []}
    for m in catalog().models:
        if not m.active:
            continue  # retired models are refused; their cards (search_models(model=...)) say what replaced them
        if task and not any(task in e.tasks for e in m.endpoints):
            continue
        if caps and not caps <= {t.lower() for t in m.tags}:
            continue
        if min_consistency and CONSISTENCY_RANK[m.consistency] < CONSISTENCY_RANK.get(min_consistency, 0):
            continue
        if tier and m.tier != tier:
            continue
        cost = typical(m).usd
        if max_price_usd is not None and cost > max_price_usd:
            continue
        hay = " ".join([m.id, m.name, m.summary, m.vendor, *m.tags, *m.aliases]).lower()
        if words and not all(w in hay for w in words):
            continue
        found.append((_score(m, cost, prefer), m))
    found.sort(key=lambda x: -x[0])
    return [summary(m, available) for _, m in found[: max(1, limit)]]


def _score(m: Model, cost: float, prefer: Prefer) -> float:
    cheap = 1.0 / (1.0 + 20 * cost)  # 1 for free, ~0.5 at $0.05, ~0.1 at $0.45
    weights = {"balanced": (1.0, 0.5, 1.5), "quality": (3.0, 0.3, 0.3), "price": (0.5, 0.3, 4.0),
               "speed": (0.7, 3.0, 0.7)}[prefer]
    return weights[0] * m.quality / 5 + weights[1] * m.speed / 3 + weights[2] * cheap


def param_card(name: str, p: Param) -> dict[str, Any]:
    card: dict[str, Any] = {"name": name, "type": p.type}
    for key in ("required", "default", "values", "min", "max", "min_items", "max_items", "role", "description"):
        value = getattr(p, key)
        if value not in (None, False, "", []):
            card[key] = value
    if p.presets:
        card["presets"] = {k: f"{w}x{h}" for k, (w, h) in p.presets.items()}
        card["custom_size"] = p.custom_size
    return card


def detail(name: str, available: set[str] | None = None) -> dict[str, Any]:
    """Everything about one model: endpoints, every parameter with its range, limits, price."""
    m = resolve(name).model
    out = summary(m, available)
    out.update({"vendor": m.vendor, "notes": m.notes, "source": m.source,
                "limits": m.limits.model_dump(exclude_defaults=True), "rules": [r.model_dump(exclude_defaults=True) for r in m.rules]})
    if m.retired is not None:
        out["status"] = "retired"
        out["retired"] = m.retired.model_dump()
    endpoints = []
    for e in m.endpoints:
        for r in e.routes:
            pricing = effective_pricing(m, e, r)
            endpoints.append({
                "task": e.task, "also": e.also, "provider": r.provider, "endpoint": r.endpoint, "output": e.output,
                "params": [param_card(n, p) for n, p in effective_params(m, e, r).items()],
                "pricing": pricing.model_dump(by_alias=True, exclude_defaults=True),
                "limits": (e.limits or m.limits).model_dump(exclude_defaults=True),
                "rules": [x.model_dump(exclude_defaults=True) for x in e.rules],
            })
    out["endpoints"] = endpoints
    return out
