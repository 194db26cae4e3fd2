"""The model catalog: load `models.json` once, resolve any name a person might use.

`resolve(name)` accepts a catalog id, an alias or a provider endpoint id (for example
`fal-ai/bytedance/seedance/v1.5/pro/image-to-video`) and returns the model, plus the endpoint
when the name pinned one. Everything else (search, pricing, payload building) works on the
returned objects.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import UnknownModelError
from .schema import Catalog, Endpoint, Model, Param, Pricing, Route

__all__ = [
    "effective_params",
    "effective_pricing",
    "Catalog",
    "Endpoint",
    "Model",
    "Param",
    "Resolved",
    "Route",
    "catalog",
    "find_route",
    "lookup",
    "resolve",
]

DATA = Path(__file__).with_name("models.json")


@cache
def catalog() -> Catalog:
    """The parsed catalog (validated against `schema.py`); read once per process."""
    return Catalog.model_validate(json.loads(DATA.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Resolved:
    """A name resolved to a model, and to one endpoint/route or provider when the name was that specific."""

    model: Model
    endpoint: Endpoint | None = None
    route: Route | None = None
    provider: str | None = None  # a route alias names the provider but not the task


@cache
def _index() -> dict[str, Resolved]:
    index: dict[str, Resolved] = {}
    for m in catalog().models:
        for name in (m.id, *m.aliases):
            index[name.lower()] = Resolved(m)
        shared = Counter(r.endpoint.lower() for e in m.endpoints for r in e.routes)
        for e in m.endpoints:
            for r in e.routes:
                # an id that serves several tasks of one model (BytePlus Seedream) pins the provider, not the task
                found = Resolved(m, e, r) if shared[r.endpoint.lower()] == 1 else Resolved(m, provider=r.provider)
                index[r.endpoint.lower()] = found
                index[f"{r.provider}:{r.endpoint}".lower()] = found
                for alias in r.aliases:
                    index[alias.lower()] = Resolved(m, provider=r.provider)
    return index


def lookup(name: str) -> Resolved | None:
    """The catalog entry a name means, or None (no suggestions computed: cheap enough for every call)."""
    key = name.strip().lower()
    if key.startswith("fal:") and key not in _index():
        key = key[4:]
    return _index().get(key)


def resolve(name: str) -> Resolved:
    """Find a model by id, alias or provider endpoint id; raise UnknownModelError naming the closest."""
    found = lookup(name)
    if found is not None:
        return found
    key = name.strip().lower()
    names = sorted({m.id for m in catalog().models})
    close = difflib.get_close_matches(key, list(_index()), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(sorted({_index()[c].model.id for c in close}))}?" if close else ""
    raise UnknownModelError(
        f"Unknown model {name!r}.{hint} Call search_models to see the catalog; known models: {', '.join(names)}."
    )


def find_route(endpoint_id: str, provider: str = "fal") -> tuple[Model, Endpoint, Route] | None:
    """The catalog entry serving a provider endpoint id, or None (used by the sandbox and queue_status)."""
    found = _index().get(f"{provider}:{endpoint_id}".lower())
    if found is None:
        return None
    if found.endpoint is not None and found.route is not None:
        return found.model, found.endpoint, found.route
    for e in found.model.endpoints:  # shared id: the first endpoint (the most general task) stands for it
        for r in e.routes:
            if r.provider == provider and r.endpoint.lower() == endpoint_id.lower():
                return found.model, e, r
    return None


def effective_params(model: Model, endpoint: Endpoint, route: Route) -> dict[str, Param]:
    """Parameters of one call: the model's, then the endpoint's, then the route's (later wins)."""
    return {**model.params, **endpoint.params, **route.params}


def effective_pricing(model: Model, endpoint: Endpoint, route: Route) -> Pricing:
    return route.pricing or endpoint.pricing or model.pricing
