"""fal's platform API (provider-protocols 4) under ``{url}/fal/api/v1``, and Replicate's model reads.

    GET /v1/models            list; find (endpoint_id=, repeatable or comma-separated); search (q=,
                              category=, status=); limit, cursor (opaque), expand=openapi-3.0
    GET /v1/models/pricing    endpoint_id= (1-50, comma-separated or repeated); needs the key
    GET /v1/models/requests/by-endpoint
                              endpoint_id= (required), start=, end= (ISO 8601; default the last 24 h),
                              request_id=, expand=payloads, limit (1-100), cursor; needs the key.
                              The sandbox's fal jobs, newest first, as ``{items: [{request_id, endpoint_id,
                              sent_at, ended_at, status_code, json_input?, json_output?}], next_cursor,
                              has_more}``; pages hold at most REQUESTS_PAGE items whatever the limit, so
                              clients exercise paging (fal may also answer fewer than asked).
/v1/models answers carry an ETag and honour If-None-Match (304). Fault routes: ``platform_models``,
``platform_pricing``, ``platform_requests`` (a 403, a 429, a malformed body or a stall are armed like
on any route).
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import jobs
from .fal_queue import output_json
from .faults import guarded
from .platform_docs import etag, items

if TYPE_CHECKING:
    from starlette.requests import Request

    from .state import SandboxState

ROUTE_NAMES = ("platform_models", "platform_pricing", "platform_requests")
MAX_LIMIT = 100
MAX_EXPANDED = 10  # with expand=openapi-3.0 a page holds at most 10 endpoints
MAX_PRICE_IDS = 50
REQUESTS_PAGE = 2  # request history pages are small here so that clients page


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

    async def requests(request: Request) -> Response:
        if denied := _auth(state, request, required=True):
            return denied
        q = request.query_params
        endpoint = q.get("endpoint_id", "").strip()
        if not endpoint:
            return _error(400, "validation_error", "endpoint_id is required.")
        now = time.time()
        try:
            start = _time(q["start"]) if q.get("start") else now - 24 * 3600
            end = _time(q["end"]) if q.get("end") else now
            limit = max(1, min(int(q.get("limit") or 20), MAX_LIMIT))
            offset = int(base64.urlsafe_b64decode(q["cursor"].encode()).decode()) if q.get("cursor") else 0
        except ValueError:
            return _error(400, "validation_error", "start and end must be ISO 8601 times, limit a number and cursor "
                                                   "a value from next_cursor.")
        found = [j for j in list(state.jobs.values()) if j.provider == "fal" and j.endpoint == endpoint
                 and start <= _wall(j.submitted) <= end and q.get("request_id", j.request_id) == j.request_id]
        found.sort(key=lambda j: j.submitted, reverse=True)
        size = min(limit, REQUESTS_PAGE)
        page = found[offset:offset + size]
        more = offset + size < len(found)
        nxt = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else None
        payloads = "payloads" in q.getlist("expand")
        return JSONResponse({"items": [_request_item(state, j, payloads) for j in page], "next_cursor": nxt,
                             "has_more": more})

    return [Route("/v1/models", guarded(state, "platform_models", models), methods=["GET"]),
            Route("/v1/models/pricing", guarded(state, "platform_pricing", pricing), methods=["GET"]),
            Route("/v1/models/requests/by-endpoint", guarded(state, "platform_requests", requests), methods=["GET"])]


def _time(text: str) -> float:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def _wall(mono: float) -> float:
    return time.time() - (time.monotonic() - mono)


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _request_item(state: SandboxState, job: jobs.Job, payloads: bool) -> dict[str, Any]:
    """One request of the history: when it was sent and ended, its HTTP status, and (expanded) its payloads."""
    status = None if not job.done else job.failure.status if job.failure is not None else 200
    item: dict[str, Any] = {
        "request_id": job.request_id, "endpoint_id": job.endpoint, "sent_at": _iso(_wall(job.submitted)),
        "ended_at": _iso(_wall(job.finished)) if job.done and job.finished is not None else None,
        "status_code": status,
    }
    if payloads:  # the input as received (nothing the sandbox keeps for itself), the output once there is one
        item["json_input"] = {k: v for k, v in job.payload.items() if not k.startswith("_sandbox")}
        item["json_output"] = output_json(state, job) if status == 200 else None
    return item


def _hay(item: dict[str, Any]) -> str:
    meta = item.get("metadata") or {}
    return " ".join([item["endpoint_id"], str(meta.get("display_name", "")), str(meta.get("description", "")),
                     *map(str, meta.get("tags") or [])]).lower()
