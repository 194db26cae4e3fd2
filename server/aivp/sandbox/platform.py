"""fal's platform API (provider-protocols 4) under ``{url}/fal/api/v1``, and Replicate's model reads.

    GET /v1/models            list; find (endpoint_id=, repeatable or comma-separated); search (q=,
                              category=, status=); limit, cursor (opaque), expand=openapi-3.0
    GET /v1/models/pricing    endpoint_id= (1-50, comma-separated or repeated); needs the key
Answers carry an ETag and honour If-None-Match (304). Fault routes: ``platform_models``,
``platform_pricing`` (a 429, a malformed body or a stall are armed like on any route).
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import guarded
from .platform_docs import etag, items

if TYPE_CHECKING:
    from starlette.requests import Request

    from .state import SandboxState

ROUTE_NAMES = ("platform_models", "platform_pricing")
MAX_LIMIT = 100
MAX_EXPANDED = 10  # with expand=openapi-3.0 a page holds at most 10 endpoints
MAX_PRICE_IDS = 50


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def _auth(state: SandboxState, request: Request, required: bool) -> Response | None:
    header = request.headers.get("authorization", "")
    if not header:
        return _error(401, "authorization_error", "Missing credentials: send Authorization: Key <FAL_KEY>.") \
            if required else None
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "key" or not key.strip() or (state.keys is not None and key.strip() not in state.keys):
        return _error(401, "authorization_error", "Invalid credentials.")
    return None


def _ids(request: Request) -> list[str]:
    return [i.strip() for raw in request.query_params.getlist("endpoint_id") for i in raw.split(",") if i.strip()]


def _json(request: Request, body: dict[str, Any]) -> Response:
    raw = json.dumps(body).encode()
    tag = etag(raw)
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"etag": tag})
    return Response(raw, media_type="application/json", headers={"etag": tag})


def _public(item: dict[str, Any], openapi: bool) -> dict[str, Any]:
    out = {"endpoint_id": item["endpoint_id"], "metadata": item.get("metadata")}
    if openapi:
        out["openapi"] = item.get("openapi") or {"error": {"code": "not_available", "message": "No OpenAPI schema"}}
    return out


def routes(state: SandboxState) -> list[Route]:
    """The platform routes, to be mounted at ``/fal/api``."""

    async def models(request: Request) -> Response:
        if denied := _auth(state, request, required=False):
            return denied
        q = request.query_params
        openapi = "openapi-3.0" in q.getlist("expand")
        try:
            limit = int(q.get("limit") or (MAX_EXPANDED if openapi else 20))
            offset = int(base64.urlsafe_b64decode(q["cursor"].encode()).decode()) if q.get("cursor") else 0
        except ValueError:
            return _error(400, "validation_error", "limit must be a number and cursor a value from next_cursor.")
        limit = max(1, min(limit, MAX_EXPANDED if openapi else MAX_LIMIT))
        found = items(state.platform)
        wanted = _ids(request)
        if wanted:  # find mode: the endpoints asked for, in that order; unknown ones are left out
            by_id = {i["endpoint_id"]: i for i in found}
            found = [by_id[i] for i in wanted if i in by_id]
        else:
            words = (q.get("q") or "").lower().split()
            if words:
                found = [i for i in found if all(w in _hay(i) for w in words)]
            if q.get("category"):
                found = [i for i in found if (i.get("metadata") or {}).get("category") == q["category"]]
            if q.get("status"):
                found = [i for i in found if (i.get("metadata") or {}).get("status", "active") == q["status"]]
            found.sort(key=lambda i: i["endpoint_id"])
        page = found[offset:offset + limit]
        more = offset + limit < len(found)
        nxt = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
        return _json(request, {"models": [_public(i, openapi) for i in page], "next_cursor": nxt, "has_more": more})

    async def pricing(request: Request) -> Response:
        if denied := _auth(state, request, required=True):
            return denied
        wanted = _ids(request)
        if not wanted or len(wanted) > MAX_PRICE_IDS:
            return _error(400, "validation_error", f"Give 1 to {MAX_PRICE_IDS} endpoint_id values.")
        by_id = {i["endpoint_id"]: i for i in items(state.platform)}
        prices = [{"endpoint_id": e, **by_id[e]["price"]} for e in wanted if e in by_id and by_id[e].get("price")]
        return JSONResponse({"prices": prices, "next_cursor": None, "has_more": False})

    return [Route("/v1/models", guarded(state, "platform_models", models), methods=["GET"]),
            Route("/v1/models/pricing", guarded(state, "platform_pricing", pricing), methods=["GET"])]


def _hay(item: dict[str, Any]) -> str:
    meta = item.get("metadata") or {}
    return " ".join([item["endpoint_id"], str(meta.get("display_name", "")), str(meta.get("description", "")),
                     *map(str, meta.get("tags") or [])]).lower()
