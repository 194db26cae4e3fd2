"""The live layer of the catalog: any fal endpoint or Replicate model, read from the providers' model APIs.

The curated catalog (`models.json`) holds aivp's *knowledge* (tiers, roles, aliases, pricing rules,
notes); this layer holds what the providers say *now*: that an endpoint exists and is active, its
input and output schemas, its unit price. It is read lazily, on the first call that needs it (never
at start-up), kept in a `DiskCache` for AIVP_CATALOG_TTL_S, asked for again conditionally when the
API gave validators, and used from the cache (with its age said) when the platform cannot be reached.

The HTTP clients live in `providers/` (fal_platform, replicate_models); this module takes them as
`FalSource` / `ReplicateSource` (anything with those methods), so the catalog never imports a provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import AivpError, MissingKeyError, ProviderError, ProviderUnavailable, UnknownModelError
from .cache import DiskCache, Entry, age_text
from .openapi import cards, fal_schemas, replicate_schemas

VERSION = re.compile(r"^(?P<model>[\w.-]+/[\w.-]+):(?P<version>[0-9a-f]{64})$")
REPLICATE_MODEL = re.compile(r"^[\w.-]+/[\w.-]+$")
FAL_ID = re.compile(r"^[\w.-]+(/[\w.@-]+)+$")
# fal categories -> (kind, aivp task)
CATEGORIES: dict[str, tuple[str, str]] = {
    "text-to-image": ("image", "t2i"), "image-to-image": ("image", "edit"), "image-editing": ("image", "edit"),
    "text-to-video": ("video", "t2v"), "image-to-video": ("video", "i2v"), "video-to-video": ("video", "v2v"),
    "reference-to-video": ("video", "reference-to-video"), "upscale": ("image", "upscale"),
    "image-upscaling": ("image", "upscale"),
}
TASK_CATEGORY = {"t2i": "text-to-image", "edit": "image-to-image", "i2i": "image-to-image",
                 "inpaint": "image-to-image", "upscale": "image-to-image", "t2v": "text-to-video",
                 "i2v": "image-to-video", "first-last-frame": "image-to-video", "reference-to-video": "image-to-video",
                 "v2v": "video-to-video", "multi-shot": "text-to-video"}


class Answer(Protocol):
    @property
    def data(self) -> Any: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def last_modified(self) -> str | None: ...
    @property
    def not_modified(self) -> bool: ...


class FalSource(Protocol):
    async def models(self, *, endpoint_ids: list[str] | None = None, q: str | None = None,
                     category: str | None = None, status: str | None = None, limit: int | None = None,
                     cursor: str | None = None, openapi: bool = False, etag: str | None = None,
                     last_modified: str | None = None) -> Answer: ...

    async def pricing(self, endpoint_ids: list[str]) -> list[dict[str, Any]]: ...


class ReplicateSource(Protocol):
    async def model(self, owner: str, name: str, *, etag: str | None = None,
                    last_modified: str | None = None) -> Answer: ...

    async def version(self, owner: str, name: str, version: str) -> Answer: ...


@dataclass(frozen=True)
class LivePrice:
    unit_price: float
    unit: str
    currency: str = "USD"


@dataclass
class LiveEndpoint:
    """One endpoint as its provider describes it now (or as the cache last saw it)."""

    provider: str  # fal | replicate
    id: str  # what a person names: a fal endpoint id, a Replicate owner/name
    submit_to: str  # what is submitted to: the fal id, or owner/name:version on Replicate
    name: str
    category: str | None
    status: str  # active | deprecated
    description: str
    input: dict[str, Any]
    output: dict[str, Any]
    schema_error: str | None = None  # the platform could not produce the schema
    price: LivePrice | None = None
    price_note: str = ""
    age_s: float = 0.0
    stale: str | None = None  # said when the answer came from an old cache because the platform failed
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str | None:
        return CATEGORIES.get(self.category or "", (None, None))[0]

    @property
    def task(self) -> str | None:
        return CATEGORIES.get(self.category or "", (None, None))[1]

    def card(self) -> dict[str, Any]:
        """What search_models(model=...) and aivp://models/{id} show: compact, never the whole schema."""
        out: dict[str, Any] = {"id": self.id, "source": "live", "provider": self.provider, "name": self.name,
                               "category": self.category, "status": self.status, "endpoint": self.submit_to,
                               "description": self.description, "price": price_text(self.price, self.price_note),
                               "params": cards(self.input)}
        if self.price is not None:
            out["unit_price"], out["unit"] = self.price.unit_price, self.price.unit
        if self.schema_error:
            out["schema_error"] = self.schema_error
        if self.stale:
            out["cache"] = self.stale
        elif self.age_s >= 60:
            out["cache_age"] = age_text(self.age_s)
        return out


def price_text(price: LivePrice | None, note: str = "") -> str:
    if price is None:
        return "unknown" + (f" ({note})" if note else "")
    unit = price.unit[:-1] if price.unit.endswith("s") and not price.unit.endswith("ss") else price.unit
    return f"${price.unit_price:g}/{unit}" + (f" {price.currency}" if price.currency != "USD" else "")


def one_line(text: Any, limit: int = 140) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_fal(item: dict[str, Any]) -> LiveEndpoint:
    """A `/v1/models` item (with `openapi` when expanded) as a LiveEndpoint."""
    raw_meta = item.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    eid = str(item.get("endpoint_id") or "")
    doc = item.get("openapi")
    error = None
    inp: dict[str, Any] = {"type": "object", "properties": {}}
    out: dict[str, Any] = {"type": "object", "properties": {}}
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        error = str(doc["error"].get("message") or doc["error"].get("code") or "no schema")
    elif isinstance(doc, dict) and doc:
        try:
            inp, out = fal_schemas(doc)
        except (TypeError, AttributeError, KeyError) as exc:  # a document aivp cannot read
            error = f"unreadable OpenAPI ({type(exc).__name__})"
    status = str(meta.get("status") or "active").lower()
    category = meta.get("category")
    return LiveEndpoint("fal", eid, eid, str(meta.get("display_name") or eid), str(category) if category else None,
                        status, one_line(meta.get("description")), inp, out, error)


def parse_replicate(model: dict[str, Any], version: dict[str, Any] | None) -> LiveEndpoint:
    owner, name = str(model.get("owner") or ""), str(model.get("name") or "")
    ref = f"{owner}/{name}"
    ver = version or (model.get("latest_version") if isinstance(model.get("latest_version"), dict) else None)
    error = None
    inp: dict[str, Any] = {"type": "object", "properties": {}}
    out: dict[str, Any] = {}
    vid = str(ver.get("id") or "") if ver else ""
    schema = ver.get("openapi_schema") if ver else None
    if isinstance(schema, dict) and schema:
        inp, out = replicate_schemas(schema)
    else:
        error = "this model has no version with an input schema"
    submit = f"{ref}:{vid}" if re.fullmatch(r"[0-9a-f]{64}", vid) else ref
    status = "active" if ver else "deprecated"
    return LiveEndpoint("replicate", ref, submit, ref, None, status, one_line(model.get("description")), inp, out,
                        error)


def kind_of_name(name: str, provider: str | None = None) -> str | None:
    """"fal" or "replicate" when the name can only be one of them, "either" for a bare owner/name, else None."""
    raw = name.strip()
    if raw.startswith("replicate:") or provider == "replicate" or VERSION.match(raw):
        return "replicate"
    if raw.startswith("fal:") or provider == "fal":
        return "fal"
    if REPLICATE_MODEL.match(raw):
        return "fal" if raw.startswith("fal-ai/") else "either"
    return "fal" if FAL_ID.match(raw) else None


class LiveCatalog:
    """The providers' model APIs behind a disk cache; one per server process."""

    def __init__(self, cache: DiskCache, *, fal: FalSource | None = None, replicate: ReplicateSource | None = None,
                 ttl_s: float | None = None) -> None:
        self.cache = cache
        self.fal = fal
        self.replicate = replicate
        self.ttl_s = cache.ttl_s if ttl_s is None else ttl_s
        self.found: dict[str, LiveEndpoint] = {}  # endpoints read for calls in this process, by the name used

    # ---------------------------------------------------------------- cached reads with fallback

    async def read(self, key: str, fetch: Any, what: str) -> tuple[Entry, str | None]:
        """The entry for `key`: fresh from the cache, else fetched (conditionally), else the stale copy.

        Returns (entry, stale_note); raises the fetch's error when there is no copy at all."""
        entry = self.cache.get(key)
        if entry is not None and entry.fresh(self.ttl_s):
            return entry, None
        try:
            answer = await fetch(entry.etag if entry else None, entry.last_modified if entry else None)
        except (ProviderError, MissingKeyError) as exc:
            if entry is None:
                raise
            return entry, (f"from the cache, {age_text(entry.age_s())} old: {what} failed ({exc})").rstrip(".")
        if answer.not_modified and entry is not None:
            return self.cache.touch(entry), None
        return self.cache.put(key, answer.data, etag=answer.etag, last_modified=answer.last_modified), None

    async def endpoint(self, name: str, provider: str | None = None) -> LiveEndpoint:
        """Any fal endpoint id or Replicate owner/name[:version]; UnknownModelError when neither provider has it."""
        raw = name.strip().removeprefix("fal:").removeprefix("replicate:")
        which = kind_of_name(name, provider)
        if which is None:
            raise UnknownModelError(f"{name!r} is neither a catalog model nor a provider endpoint id (fal: "
                                    "owner/app[/path], Replicate: owner/name[:version]). Call search_models to find one.")
        if which in ("fal", "either") and self.fal is not None:
            found = await self._fal(raw)
            if found is not None or which == "fal" or self.replicate is None:
                if found is None:
                    raise UnknownModelError(f"fal has no endpoint {raw!r} (its model API does not list it: it never "
                                            "existed or has been removed). Call search_models to find a current one.")
                return found
        if self.replicate is None:
            raise UnknownModelError(f"{name!r} is not a model aivp can look up (no live source for it).")
        return await self._replicate(raw)

    async def _fal(self, eid: str) -> LiveEndpoint | None:
        assert self.fal is not None
        fal = self.fal

        async def fetch(etag: str | None, modified: str | None) -> Any:
            return await fal.models(endpoint_ids=[eid], openapi=True, etag=etag, last_modified=modified)

        entry, stale = await self.read(f"fal/model/{eid}", fetch, f"reading {eid} from fal's platform API")
        items = entry.data.get("models") if isinstance(entry.data, dict) else None
        item = next((m for m in items or [] if isinstance(m, dict) and m.get("endpoint_id") == eid), None)
        if item is None:
            return None
        ep = parse_fal(item)
        ep.age_s, ep.stale = entry.age_s(), stale
        await self._price(ep)
        return ep

    async def _replicate(self, ref: str) -> LiveEndpoint:
        assert self.replicate is not None
        rep = self.replicate
        m = VERSION.match(ref)
        model_ref = m["model"] if m else ref
        if not REPLICATE_MODEL.match(model_ref):
            raise UnknownModelError(f"{ref!r} is not a Replicate model (owner/name or owner/name:<64-hex version>).")
        owner, mname = model_ref.split("/")

        async def fetch_model(etag: str | None, modified: str | None) -> Any:
            return await rep.model(owner, mname, etag=etag, last_modified=modified)

        try:
            entry, stale = await self.read(f"replicate/model/{model_ref}", fetch_model, f"reading {model_ref} from Replicate")
        except ProviderError as exc:
            if getattr(exc, "status_code", None) == 404:
                raise UnknownModelError(f"Replicate has no model {model_ref!r}; check the name with search_models or "
                                        "on replicate.com.") from None
            raise
        version = None
        if m:
            async def fetch_version(etag: str | None, modified: str | None) -> Any:
                return await rep.version(owner, mname, m["version"])

            ventry, vstale = await self.read(f"replicate/version/{ref}", fetch_version, f"reading {ref} from Replicate")
            version, stale = ventry.data, stale or vstale
        ep = parse_replicate(entry.data, version)
        ep.age_s, ep.stale = entry.age_s(), stale
        ep.price_note = "Replicate publishes no per-model price through its API"
        return ep

    async def _price(self, ep: LiveEndpoint) -> None:
        """The unit price from fal's pricing API (cached); unknown, with the reason, when it cannot be had."""
        assert self.fal is not None
        fal = self.fal

        async def fetch(etag: str | None, modified: str | None) -> Any:
            prices = await fal.pricing([ep.id])
            found = next((p for p in prices if p.get("endpoint_id") == ep.id), None)
            return _Plain({"price": found})

        try:
            entry, _ = await self.read(f"fal/price/{ep.id}", fetch, f"reading the price of {ep.id}")
        except AivpError as exc:
            ep.price_note = f"the pricing API could not be read: {exc}"
            return
        ep.price, ep.price_note = parse_price(entry.data.get("price") if isinstance(entry.data, dict) else None)

    def cached(self, name: str) -> LiveEndpoint | None:
        """What the cache knows of a fal endpoint, without any request (status checks of curated routes)."""
        entry = self.cache.get(f"fal/model/{name.strip()}")
        items = entry.data.get("models") if entry is not None and isinstance(entry.data, dict) else None
        item = next((m for m in items or [] if isinstance(m, dict) and m.get("endpoint_id") == name.strip()), None)
        return parse_fal(item) if item is not None else None


@dataclass(frozen=True)
class _Plain:
    """A computed answer stored like a fetched one (no validators)."""

    data: Any
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


def parse_price(item: Any) -> tuple[LivePrice | None, str]:
    if not isinstance(item, dict):
        return None, "the pricing API lists no price for it"
    try:
        price = float(item["unit_price"])
    except (KeyError, TypeError, ValueError):
        return None, "the pricing API gave no usable unit price"
    unit = str(item.get("unit") or "").strip().lower()
    if not unit or price < 0:
        return None, "the pricing API gave no unit"
    return LivePrice(price, unit, str(item.get("currency") or "USD").upper()), ""


def unavailable(name: str, exc: Exception) -> ProviderUnavailable:
    return ProviderUnavailable(f"aivp could not read {name} from its provider's model API ({exc}) and has no cached "
                               "copy, so it cannot check the call. Try again in a minute, or use a catalog model "
                               "(search_models), which needs no lookup.")
