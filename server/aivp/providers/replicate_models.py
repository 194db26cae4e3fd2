"""Replicate's model API: a model (`GET /v1/models/{owner}/{name}`, with its latest version's
`openapi_schema`) and a pinned version (`GET /v1/models/{owner}/{name}/versions/{id}`).

What the live catalog reads to run any Replicate model by `owner/name[:version]`. GETs only, with the
same short timeout and few attempts as fal's platform API (the catalog falls back to its cache).
Replicate's API needs the token for these reads too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from ..errors import ProviderError
from .base import USER_AGENT
from .fal_platform import ATTEMPTS, PlatformAnswer, get_json
from .http import RetryPolicy

if TYPE_CHECKING:
    from ..settings import Settings


class ReplicateModels:
    """Replicate's models and versions, on the shared httpx client and the settings' base URL."""

    title = "Replicate's model API"

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.base = settings.url("replicate", "api").rstrip("/") + "/v1"
        self.policy = RetryPolicy(ATTEMPTS, settings.retry_base_s, min(settings.retry_cap_s, settings.catalog_timeout_s))

    def _headers(self) -> dict[str, str]:
        token = self.settings.require_key("replicate").get()
        return {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT, "Accept": "application/json"}

    async def model(self, owner: str, name: str, *, etag: str | None = None,
                    last_modified: str | None = None) -> PlatformAnswer:
        what = f"read the model {owner}/{name}"
        answer = await get_json(self.client, f"{self.base}/models/{quote(owner)}/{quote(name)}", params=None,
                                headers=self._headers(), timeout_s=self.settings.catalog_timeout_s, policy=self.policy,
                                what=what, title=self.title, etag=etag, last_modified=last_modified)
        if not answer.not_modified and not isinstance(answer.data, dict):
            raise ProviderError(f"{self.title} answered the request to {what} with something that is not a model.")
        return answer

    async def version(self, owner: str, name: str, version: str) -> PlatformAnswer:
        what = f"read version {version[:12]} of {owner}/{name}"
        answer = await get_json(self.client, f"{self.base}/models/{quote(owner)}/{quote(name)}/versions/{quote(version)}",
                                params=None, headers=self._headers(), timeout_s=self.settings.catalog_timeout_s,
                                policy=self.policy, what=what, title=self.title)
        if not isinstance(answer.data, dict):
            raise ProviderError(f"{self.title} answered the request to {what} with something that is not a version.")
        return answer
