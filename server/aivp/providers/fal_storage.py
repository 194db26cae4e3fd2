"""Uploading local files to fal's storage, so a model can read them by URL.

1. A CDN token from `POST {rest}/storage/auth/token?storage_type=fal-cdn-v3` (cached until it expires).
2. Files up to the multipart threshold: one `POST {cdn}/files/upload` streamed from disk.
   Larger files: `POST {token.base_url}/files/upload/multipart`, parts `PUT .../multipart/{id}/{n}`
   (each part read from disk when sent), then `POST .../complete`.
3. If that fails: `POST {rest}/storage/upload/initiate?storage_type=gcs` for a signed URL, and a
   plain `PUT` to it. The signed-URL host gets no Authorization header: it must never see the key.

The CDN hosts get the short-lived CDN token, never the fal key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx

from ..errors import ProviderError, ProviderHTTPError
from ..settings import Settings
from .http import RetryPolicy, send

log = logging.getLogger("aivp.fal.storage")
CHUNK = 1 << 20


def _ok(r: httpx.Response) -> bool:
    return 200 <= r.status_code < 300


def _retryable(r: httpx.Response) -> bool:
    return r.status_code in (408, 409, 429, 502, 503, 504)


async def _file_chunks(path: Path, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
    """Stream a file (or a slice of it) from disk without holding it in memory."""
    remaining = length
    async with await anyio.open_file(path, "rb") as f:
        await f.seek(start)
        while remaining is None or remaining > 0:
            chunk = await f.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


class FalStorage:
    """fal's CDN upload flows with the initiate/signed-PUT fallback."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        policy: RetryPolicy,
        key_headers: Callable[..., dict[str, str]],
    ) -> None:
        self.settings = settings
        self.client = client
        self.policy = policy
        self.key_headers = key_headers
        self.rest = settings.url("fal", "rest")
        self.cdn = settings.url("fal", "cdn")
        self._token: dict[str, Any] | None = None
        self._token_lock = anyio.Lock()

    async def upload(self, path: Path, content_type: str) -> str:
        size = path.stat().st_size
        try:
            token = await self._cdn_token()
            if size > self.settings.multipart_threshold:
                return await self._multipart(path, content_type, size, token)
            return await self._single(path, content_type, size, token)
        except (ProviderError, httpx.HTTPError, KeyError, ValueError) as exc:
            log.info("CDN upload of %s failed (%s); using the signed-URL fallback", path.name, exc)
            return await self._signed_put(path, content_type, size)

    async def _cdn_token(self) -> dict[str, Any]:
        async with self._token_lock:
            now = datetime.now(UTC)
            if self._token and self._token["expires"] - timedelta(seconds=30) > now:
                return self._token
            url = f"{self.rest}/storage/auth/token"
            r = await send(self.client, "POST", url, policy=self.policy, idempotent=True, retryable=_retryable,
                           what="get a fal CDN upload token", params={"storage_type": "fal-cdn-v3"}, json={},
                           headers=self.key_headers(Accept="application/json"))
            if not _ok(r):
                raise ProviderHTTPError(f"fal would not issue an upload token (HTTP {r.status_code}).",
                                        status_code=r.status_code)
            body = r.json()
            expires = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00"))
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
            self._token = {"auth": f"{body.get('token_type', 'Bearer')} {body['token']}",
                           "base_url": str(body.get("base_url") or self.cdn).rstrip("/"),
                           "expires": expires}
            return self._token

    async def _single(self, path: Path, content_type: str, size: int, token: dict[str, Any]) -> str:
        r = await send(self.client, "POST", f"{self.cdn}/files/upload", policy=self.policy,
                       idempotent=True, retryable=_retryable, what=f"upload {path.name}",
                       content_factory=lambda: _file_chunks(path),
                       headers={"Authorization": token["auth"], "Content-Type": content_type,
                                "Content-Length": str(size), "X-Fal-File-Name": path.name})
        if not _ok(r):
            raise ProviderHTTPError(f"fal CDN refused the upload (HTTP {r.status_code}).", status_code=r.status_code)
        return str(r.json()["access_url"])

    async def _multipart(self, path: Path, content_type: str, size: int, token: dict[str, Any]) -> str:
        auth = {"Authorization": token["auth"]}
        r = await send(self.client, "POST", f"{token['base_url']}/files/upload/multipart", policy=self.policy,
                       idempotent=True, retryable=_retryable, what=f"start a multipart upload of {path.name}",
                       headers={**auth, "Accept": "application/json", "Content-Type": content_type,
                                "X-Fal-File-Name": path.name})
        if not _ok(r):
            raise ProviderHTTPError(f"fal CDN refused the multipart upload (HTTP {r.status_code}).",
                                    status_code=r.status_code)
        body = r.json()
        access_url, upload_id = str(body["access_url"]), str(body["uploadId"])
        part = self.settings.part_size
        parts = []
        for n, start in enumerate(range(0, size, part), start=1):
            length = min(part, size - start)

            def chunks(s: int = start, ln: int = length) -> AsyncIterator[bytes]:
                return _file_chunks(path, s, ln)

            pr = await send(self.client, "PUT", f"{access_url}/multipart/{upload_id}/{n}", policy=self.policy,
                            idempotent=True, retryable=_retryable, what=f"upload part {n} of {path.name}",
                            content_factory=chunks,
                            headers={**auth, "Content-Type": content_type, "Content-Length": str(length)})
            if not _ok(pr) or "etag" not in pr.headers:
                raise ProviderHTTPError(f"fal CDN refused part {n} (HTTP {pr.status_code}).", status_code=pr.status_code)
            parts.append({"partNumber": n, "etag": pr.headers["etag"]})
        cr = await send(self.client, "POST", f"{access_url}/multipart/{upload_id}/complete", policy=self.policy,
                        idempotent=True, retryable=_retryable, what=f"finish the upload of {path.name}",
                        json={"parts": parts}, headers=auth)
        if not _ok(cr):
            raise ProviderHTTPError(f"fal CDN could not finish the upload (HTTP {cr.status_code}).",
                                    status_code=cr.status_code)
        return access_url

    async def _signed_put(self, path: Path, content_type: str, size: int) -> str:
        r = await send(self.client, "POST", f"{self.rest}/storage/upload/initiate",
                       policy=self.policy, idempotent=True, retryable=_retryable, what=f"start an upload of {path.name}",
                       params={"storage_type": "gcs"}, json={"file_name": path.name, "content_type": content_type},
                       headers=self.key_headers(Accept="application/json"))
        if not _ok(r):
            raise ProviderHTTPError(f"fal would not take the upload of {path.name} (HTTP {r.status_code}). "
                                    "Try again, or pass an https URL of the file instead.", status_code=r.status_code)
        body = r.json()
        # A separate request with only the headers the signed URL needs: no Authorization, ever.
        pr = await send(self.client, "PUT", str(body["upload_url"]), policy=self.policy, idempotent=True,
                        retryable=_retryable, what=f"upload {path.name}",
                        content_factory=lambda: _file_chunks(path),
                        headers={"Content-Type": content_type, "Content-Length": str(size)})
        if not _ok(pr):
            raise ProviderHTTPError(f"The signed upload of {path.name} failed (HTTP {pr.status_code}); try again.",
                                    status_code=pr.status_code)
        return str(body["file_url"])
