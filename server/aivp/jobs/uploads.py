"""Putting local input files where a provider can read them, once per content.

A character sheet used in twenty shots is uploaded once: the URL is remembered in the ledger by the
file's hash and the provider, and reused while the provider keeps it (`upload_ttl_s`). Inline
"uploads" (BytePlus takes data: URIs) are not worth remembering.
"""

from __future__ import annotations

from typing import Any

from ..inputs import InputRef, iter_inputs
from ..ledger import Ledger
from ..providers.base import Provider

async def upload(ledger: Ledger, provider: Provider, ref: InputRef) -> tuple[str, bool]:
    """The provider's URL for a local file, and whether it was a remembered upload."""
    assert ref.path is not None and ref.sha256 is not None
    cached = ledger.cached_upload(ref.sha256, provider.name, provider.upload_ttl_s)
    if cached:
        return cached, True
    url = await provider.upload(ref.path, ref.mime or "application/octet-stream")
    if not url.startswith("data:"):
        ledger.remember_upload(ref.sha256, provider.name, url, ref.size or 0)
    return url, False


async def upload_inputs(ledger: Ledger, provider: Provider, payload: dict[str, Any]) -> None:
    """Give every local input of a payload its provider URL (in place), just before the submit."""
    for ref in iter_inputs(payload):
        if ref.kind == "path" and not ref.url:
            ref.url, _ = await upload(ledger, provider, ref)
