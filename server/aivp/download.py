"""Streaming downloads of provider outputs into a temporary file, resumed after a dropped connection.

Output URLs are public CDN links: no Authorization header is ever sent with them. A broken
transfer is resumed with a Range request when the server supports it, otherwise restarted; a
404/403/410 means the link has expired and the file is gone (`OutputLost`). Memory stays flat
whatever the size: bytes go from the socket to the file in 1 MiB chunks.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from .errors import OutputLost, ProviderUnavailable
from .providers.http import RetryPolicy, host_of

log = logging.getLogger("aivp.download")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str
    content_type: str | None


async def download(client: httpx.AsyncClient, url: str, dest: Path, *, policy: RetryPolicy) -> Downloaded:
    """Fetch `url` into `dest` (a temporary path); on failure `dest` is removed."""
    if url.lower().startswith("data:"):
        return await anyio.to_thread.run_sync(_from_data_uri, url, dest)
    if not url.lower().startswith(("https://", "http://")):
        raise OutputLost(f"The provider returned an output link aivp will not fetch ({url[:60]!r}); only http(s) is used.")
    written = 0
    gone = 0
    digest = hashlib.sha256()
    content_type: str | None = None
    attempt = 0
    try:
        dest.unlink(missing_ok=True)
        while True:
            attempt += 1
            headers = {"Range": f"bytes={written}-"} if written else {}
            try:
                async with client.stream("GET", url, headers=headers) as r:
                    if r.status_code in (403, 404, 410) and gone < 2:  # a CDN can lag a moment behind the result
                        gone += 1
                        raise httpx.RemoteProtocolError(f"HTTP {r.status_code}")
                    if r.status_code in (403, 404, 410):
                        raise OutputLost(
                            f"The output link has expired or is gone (HTTP {r.status_code} from {host_of(url)}); "
                            f"the file cannot be fetched any more. Link: {url}"
                        )
                    if r.status_code >= 500 or r.status_code in (408, 429):
                        raise httpx.RemoteProtocolError(f"HTTP {r.status_code}")
                    if r.status_code not in (200, 206):
                        raise OutputLost(f"Downloading the output failed with HTTP {r.status_code} from {host_of(url)}.")
                    if r.status_code == 200:
                        written = 0  # a fresh body (or a server that ignores Range): start over
                        digest = hashlib.sha256()
                    content_type = r.headers.get("content-type", content_type)
                    expected = _expected_total(r, written)
                    async with await anyio.open_file(dest, "ab" if written else "wb") as f:
                        async for chunk in r.aiter_bytes(CHUNK):
                            await f.write(chunk)
                            digest.update(chunk)  # hashed on the way in: no second pass over a big file
                            written += len(chunk)
                    if expected is not None and written != expected:
                        raise httpx.RemoteProtocolError(f"got {written} of {expected} bytes")
                    break
            except httpx.TransportError as exc:
                if attempt >= policy.attempts:
                    raise ProviderUnavailable(
                        f"Downloading the output from {host_of(url)} kept failing ({exc}); the result is still at the "
                        "provider. Call queue_status with the job id to try the download again."
                    ) from None
                log.info("download of %s broke at %d bytes (%s); resuming", host_of(url), written, exc)
                await policy.sleep(policy.backoff(attempt))
        return Downloaded(dest, written, digest.hexdigest(), content_type.split(";")[0].strip() if content_type else None)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _expected_total(r: httpx.Response, already: int) -> int | None:
    if r.status_code == 206:
        rng = r.headers.get("content-range", "")
        if "/" in rng and rng.rsplit("/", 1)[1].isdigit():
            return int(rng.rsplit("/", 1)[1])
    length = r.headers.get("content-length")
    if length and length.isdigit():
        return int(length) + (already if r.status_code == 206 else 0)
    return None


def _from_data_uri(url: str, dest: Path) -> Downloaded:
    """An output sent inline (BytePlus b64_json, fal sync_mode): decode it to the file."""
    import base64
    import binascii

    head, _, body = url.partition(",")
    if ";base64" not in head.lower():
        raise OutputLost("The provider sent an inline output that is not base64; aivp cannot read it.")
    try:
        data = base64.b64decode(body, validate=False)
    except (binascii.Error, ValueError):
        raise OutputLost("The provider sent an inline output that is not valid base64.") from None
    dest.write_bytes(data)
    mime = head[5:].split(";")[0] or None
    return Downloaded(dest, len(data), hashlib.sha256(data).hexdigest(), mime)
