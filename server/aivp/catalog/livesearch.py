"""Many live endpoints at once: a search page for search_models, and a batch read for the drift check.

A search page is one `/v1/models` request (cached like any answer) and one pricing request for the
page's endpoints that the cache does not price yet. `prefetch` reads a list of endpoints ten to a
request (fal's limit with `expand=openapi-3.0`) and their prices fifty to a request, and stores each
under the same key a single read uses, so the reads that follow come from the cache.
"""

from __future__ import annotations

from typing import Any

from ..errors import AivpError, MissingKeyError
from .live import TASK_CATEGORY, LiveCatalog, LiveEndpoint, parse_fal, parse_price, price_text

FIND_PAGE = 10
PRICE_PAGE = 50
MAX_PAGES = 3  # search pages read for one answer when curated endpoints fill them


async def search(live: LiveCatalog, *, query: str | None, task: str | None, limit: int, cursor: str | None,
                 skip: set[str]) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """(live results, next cursor, a note when the platform failed or a page is old) for search_models.

    Endpoints the curated catalog already lists (`skip`) are left out; when that empties a page, the
    next pages are read too (at most MAX_PAGES), so a page of results is rarely empty while more exist."""
    if live.fal is None:
        return [], None, None
    found: list[LiveEndpoint] = []
    notes: list[str] = []
    nxt = cursor
    for _ in range(MAX_PAGES):
        try:
            items, page_next, stale = await _page(live, query, task, limit, nxt)
        except AivpError as exc:
            if not found:
                return [], None, f"live results unavailable: {exc}"
            notes.append(f"more live results unavailable: {exc}")
            nxt = None
            break
        if stale:
            notes.append(f"live results {stale}")
        found += [e for e in (parse_fal(m) for m in items if str(m.get("endpoint_id")).lower() not in skip)
                  if e.status == "active"]
        nxt = page_next
        if len(found) >= limit or nxt is None:
            break
    await prices(live, found)
    rows = []
    for e in found:
        row: dict[str, Any] = {"id": e.id, "source": "live", "provider": "fal", "name": e.name,
                               "category": e.category, "price": price_text(e.price, e.price_note),
                               "description": e.description}
        if e.price is not None:
            row["unit_price"], row["unit"] = e.price.unit_price, e.price.unit
        rows.append(row)
    return rows, nxt, "; ".join(notes) or None


async def _page(live: LiveCatalog, query: str | None, task: str | None, limit: int,
                cursor: str | None) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """One `/v1/models` search page (cached): its items, the next cursor, and the stale note."""
    assert live.fal is not None
    fal = live.fal
    category = TASK_CATEGORY.get(task or "")

    async def fetch(etag: str | None, modified: str | None) -> Any:
        return await fal.models(q=query or None, category=category, status="active", limit=limit, cursor=cursor,
                                etag=etag, last_modified=modified)

    key = f"fal/search/{query or ''}|{category or ''}|{limit}|{cursor or ''}"
    entry, stale = await live.read(key, fetch, "searching fal's platform API")
    data = entry.data if isinstance(entry.data, dict) else {}
    items = [m for m in data.get("models") or [] if isinstance(m, dict) and m.get("endpoint_id")]
    nxt = data.get("next_cursor") if data.get("has_more") else None
    return items, nxt if isinstance(nxt, str) else None, stale


async def prices(live: LiveCatalog, eps: list[LiveEndpoint], *, force: bool = False) -> None:
    """Prices of several endpoints, in as few requests as fal allows (the cached ones from the cache)."""
    if live.fal is None:
        return
    missing = []
    for e in eps:
        entry = live.cache.get(f"fal/price/{e.id}")
        if entry is not None and entry.fresh(live.ttl_s) and not force:
            e.price, e.price_note = parse_price(entry.data.get("price") if isinstance(entry.data, dict) else None)
        else:
            missing.append(e)
    for i in range(0, len(missing), PRICE_PAGE):
        chunk = missing[i:i + PRICE_PAGE]
        try:
            found = await live.fal.pricing([e.id for e in chunk])
        except AivpError as exc:
            for e in missing[i:]:
                e.price_note = "no key to read prices" if isinstance(exc, MissingKeyError) else "the pricing API failed"
            return
        by_id = {p.get("endpoint_id"): p for p in found}
        for e in chunk:
            live.cache.put(f"fal/price/{e.id}", {"price": by_id.get(e.id)})
            e.price, e.price_note = parse_price(by_id.get(e.id))


async def prefetch(live: LiveCatalog, ids: list[str], *, force: bool = False) -> str | None:
    """Read these fal endpoints (and their prices) into the cache in batches; a note when the platform failed."""
    if live.fal is None:
        return "no fal source"
    wanted = [i for i in dict.fromkeys(ids) if force or not _fresh(live, f"fal/model/{i}")]
    note = None
    for i in range(0, len(wanted), FIND_PAGE):
        chunk = wanted[i:i + FIND_PAGE]
        try:
            answer = await live.fal.models(endpoint_ids=chunk, openapi=True, limit=len(chunk))
        except AivpError as exc:
            note = f"fal's platform API failed ({exc}); older cached answers were used where there were any"
            break
        data = answer.data if isinstance(answer.data, dict) else {}
        by_id = {m.get("endpoint_id"): m for m in data.get("models") or [] if isinstance(m, dict)}
        for eid in chunk:
            live.cache.put(f"fal/model/{eid}", {"models": [by_id[eid]] if eid in by_id else []})
    await prices(live, [LiveEndpoint("fal", i, i, i, None, "active", "", {}, {}) for i in ids], force=force)
    return note


def _fresh(live: LiveCatalog, key: str) -> bool:
    entry = live.cache.get(key)
    return entry is not None and entry.fresh(live.ttl_s)
