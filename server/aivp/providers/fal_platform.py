"""fal's platform API (`{AIVP_FAL_API_URL}/v1/...`): model search, per-endpoint OpenAPI, prices.

Only what the live catalog reads: `GET /v1/models` (list, find by `endpoint_id`, search by `q`,
`category`, `status`, `limit`, `cursor`, `expand=openapi-3.0`) and `GET /v1/models/pricing`.
It is a small class on purpose: the request lookups (`/v1/models/requests/by-endpoint`) belong here
too when they are added. Every call is a GET, so it may be repeated; it is given a short timeout
(`Settings.catalog_timeout_s`, 10 s) and two attempts, because the catalog falls back to its cache
rather than make a generation wait for a slow platform. The key is sent when there is one
(models: optional, more generous rate limits; pricing: required).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import MissingKeyError, ProviderError, ProviderHTTPError
from .base import USER_AGENT
from .http import RetryPolicy, retry_after, send

if TYPE_CHECKING:
    from ..settings import Settings

MAX_PRICE_IDS = 50  # the pricing route takes 1-50 endpoint ids per call
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

    def _headers(self, *, required: bool) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        key = self.settings.key_for("fal")
        if key is None and required:
            raise MissingKeyError("fal's pricing API needs FAL_KEY; without it a live endpoint's price is unknown.")
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
