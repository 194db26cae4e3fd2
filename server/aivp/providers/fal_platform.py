"""fal's platform API (`{AIVP_FAL_API_URL}/v1/...`): model search, per-endpoint OpenAPI, prices.

What the live catalog reads, `GET /v1/models` (list, find by `endpoint_id`, search by `q`,
`category`, `status`, `limit`, `cursor`, `expand=openapi-3.0`) and `GET /v1/models/pricing`, and
what settling a lost submit reads, `GET /v1/models/requests/by-endpoint` (an endpoint's requests in a
time window, with their inputs). Every call is a GET, so it may be repeated; it is given a short
timeout (`Settings.catalog_timeout_s`, 10 s) and two attempts, because the catalog falls back to its
cache and a settle can look again later, rather than make a generation wait for a slow platform. The
key is sent when there is one (models: optional, more generous rate limits; pricing and request
history: required, and fal may keep request history to admin-scoped keys: 401/403).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import MissingKeyError, ProviderError, ProviderHTTPError
from .base import USER_AGENT
from .http import RetryPolicy, retry_after, send

if TYPE_CHECKING:
    from ..settings import Settings

MAX_PRICE_IDS = 50  # the pricing route takes 1-50 endpoint ids per call
REQUESTS_LIMIT = 100  # by-endpoint pages hold at most 100 requests
REQUESTS_PAGES = 20  # a settle reads at most 2,000 requests of one endpoint in its window
ATTEMPTS = 2


@dataclass(frozen=True)
class PlatformAnswer:
    """A model API's answer: its JSON, the validators for a conditional request, or "not modified"."""

    data: Any
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


def _retryable(r: httpx.Response) -> bool:
    return r.status_code in (408, 429, 502, 503, 504)


async def get_json(client: httpx.AsyncClient, url: str, *, params: Any, headers: dict[str, str], timeout_s: float,
                   policy: RetryPolicy, what: str, title: str, etag: str | None = None,
                   last_modified: str | None = None) -> PlatformAnswer:
    """One GET of a model API under the retry policy; errors say what failed and what the caller can do."""
    headers = dict(headers)
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    r = await send(client, "GET", url, policy=policy, idempotent=True, retryable=_retryable, what=what,
                   params=params, headers=headers, timeout=httpx.Timeout(timeout_s))
    validators = {"etag": r.headers.get("etag"), "last_modified": r.headers.get("last-modified")}
    if r.status_code == 304:
        return PlatformAnswer(None, not_modified=True, **validators)
    if r.status_code != 200:
        raise _error(r, what, title)
    try:
        data = r.json()
    except ValueError:
        raise ProviderError(f"{title} answered the request to {what} with something that is not JSON "
                            f"(HTTP 200, {len(r.content)} bytes).") from None
    return PlatformAnswer(data, **validators)


def _error(r: httpx.Response, what: str, title: str) -> ProviderHTTPError:
    try:
        body = r.json()
    except ValueError:
        body = None
    message = ""
    if isinstance(body, dict):
        err = body.get("error")
        message = str(err.get("message") or err.get("type") or "") if isinstance(err, dict) else str(
            body.get("detail") or body.get("message") or err or "")
    message = message.strip()[:300] or (r.text or "").strip()[:200] or "no detail"
    if r.status_code == 429:
        wait = retry_after(r)
        asks = f"it asks to wait {wait:.0f} s" if wait else "wait a minute"
        return ProviderHTTPError(f"{title} is rate-limiting requests to {what} (429: {message}); {asks}.",
                                 status_code=429, error_type="rate_limited")
    return ProviderHTTPError(f"{title} refused the request to {what} (HTTP {r.status_code}: {message}).",
                             status_code=r.status_code)


class FalPlatform:
    """fal's model search, schemas and prices, on the shared httpx client and the settings' base URL."""

    title = "fal's platform API"

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.base = settings.url("fal", "platform").rstrip("/") + "/v1"
        self.policy = RetryPolicy(ATTEMPTS, settings.retry_base_s, min(settings.retry_cap_s, settings.catalog_timeout_s))

    def _headers(self, *, required: bool, missing: str = "fal's pricing API needs FAL_KEY; without it a live "
                 "endpoint's price is unknown.") -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        key = self.settings.key_for("fal")
        if key is None and required:
            raise MissingKeyError(missing)
        if key is not None:
            headers["Authorization"] = f"Key {key.get()}"
        return headers

    async def models(self, *, endpoint_ids: list[str] | None = None, q: str | None = None,
                     category: str | None = None, status: str | None = None, limit: int | None = None,
                     cursor: str | None = None, openapi: bool = False, etag: str | None = None,
                     last_modified: str | None = None) -> PlatformAnswer:
        """`GET /v1/models`: find (endpoint_ids), search (q, category, status) or list; one page."""
        params: list[tuple[str, str]] = [("endpoint_id", e) for e in endpoint_ids or []]
        for name, value in (("q", q), ("category", category), ("status", status), ("cursor", cursor)):
            if value:
                params.append((name, value))
        if limit:
            params.append(("limit", str(limit)))
        if openapi:
            params.append(("expand", "openapi-3.0"))
        what = f"find {', '.join(endpoint_ids)}" if endpoint_ids else f"search models ({q or category or 'all'})"
        answer = await get_json(self.client, f"{self.base}/models", params=params, headers=self._headers(required=False),
                                timeout_s=self.settings.catalog_timeout_s, policy=self.policy, what=what,
                                title=self.title, etag=etag, last_modified=last_modified)
        if not answer.not_modified and not (isinstance(answer.data, dict) and isinstance(answer.data.get("models"), list)):
            raise ProviderError(f"{self.title} answered the request to {what} without a list of models.")
        return answer

    async def pricing(self, endpoint_ids: list[str]) -> list[dict[str, Any]]:
        """`GET /v1/models/pricing`: the unit prices fal lists for these endpoints (50 per request)."""
        prices: list[dict[str, Any]] = []
        headers = self._headers(required=True)
        for i in range(0, len(endpoint_ids), MAX_PRICE_IDS):
            chunk = endpoint_ids[i:i + MAX_PRICE_IDS]
            answer = await get_json(self.client, f"{self.base}/models/pricing", params=[("endpoint_id", ",".join(chunk))],
                                    headers=headers, timeout_s=self.settings.catalog_timeout_s, policy=self.policy,
                                    what=f"read the prices of {len(chunk)} endpoint(s)", title=self.title)
            found = answer.data.get("prices") if isinstance(answer.data, dict) else None
            if not isinstance(found, list):
                raise ProviderError(f"{self.title} answered the pricing request without a list of prices.")
            prices.extend(p for p in found if isinstance(p, dict))
        return prices

    async def requests(self, endpoint_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """`GET /v1/models/requests/by-endpoint?expand=payloads`: every request made to `endpoint_id` that fal lists
        between `start` and `end`, each `{request_id, sent_at, ended_at, status_code, json_input, json_output}`.

        Follows `next_cursor` up to REQUESTS_PAGES pages; raises ProviderHTTPError (401/403: this key may not
        read request history) or ProviderError (a malformed answer, or more requests than a settle reads)."""
        headers = self._headers(required=True, missing="fal's request history needs FAL_KEY.")
        base = [("endpoint_id", endpoint_id), ("start", _iso(start)), ("end", _iso(end)), ("expand", "payloads"),
                ("limit", str(REQUESTS_LIMIT))]
        what = f"list the requests of {endpoint_id}"
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(REQUESTS_PAGES):
            params = base + ([("cursor", cursor)] if cursor else [])
            answer = await get_json(self.client, f"{self.base}/models/requests/by-endpoint", params=params,
                                    headers=headers, timeout_s=self.settings.catalog_timeout_s, policy=self.policy,
                                    what=what, title=self.title)
            data = answer.data
            items = data.get("items") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise ProviderError(f"{self.title} answered the request to {what} without a list of items.")
            found.extend(i for i in items if isinstance(i, dict))
            nxt = data.get("next_cursor")
            if not (data.get("has_more") and isinstance(nxt, str) and nxt):
                return found
            cursor = nxt
        raise ProviderError(f"{self.title} lists more than {REQUESTS_LIMIT * REQUESTS_PAGES} requests of {endpoint_id} "
                            "in that time window; aivp did not read them all.")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
