"""Putting local input files where a provider can read them, once per content.

A character sheet used in twenty shots is uploaded once: the URL is remembered in the ledger by the
file's hash, the provider and the provider's base URLs (a sandbox's links are never handed to fal),
and reused while the provider keeps it (`upload_ttl_s`). `fresh` uploads again. Inline "uploads"
(BytePlus takes data: URIs) are not worth remembering. When a provider cannot read an upload aivp
gave it, `reupload` rebuilds the request from the ledger with new uploads (drive.py resubmits it once).
"""

from __future__ import annotations

from typing import Any

from ..errors import InputFileError
from ..inputs import InputRef, iter_inputs
from ..ledger import Ledger
from ..project import Project
from ..providers.base import Provider


async def upload(ledger: Ledger, provider: Provider, ref: InputRef, *, fresh: bool = False) -> tuple[str, bool]:
    """The provider's URL for a local file, and whether it was a remembered upload."""
    assert ref.path is not None and ref.sha256 is not None
    if not fresh:
        cached = ledger.cached_upload(ref.sha256, provider.name, provider.upload_scope, provider.upload_ttl_s)
        if cached:
            return cached, True
    url = await provider.upload(ref.path, ref.mime or "application/octet-stream")
    if not url.startswith("data:"):
        ledger.remember_upload(ref.sha256, provider.name, provider.upload_scope, url, ref.size or 0)
    return url, False


async def upload_inputs(ledger: Ledger, provider: Provider, payload: dict[str, Any], *, fresh: bool = False) -> None:
    """Give every local input of a payload its provider URL (in place), just before the submit."""
    for ref in iter_inputs(payload):
        if ref.kind == "path" and not ref.url:
            ref.url, _ = await upload(ledger, provider, ref, fresh=fresh)


async def reupload(ledger: Ledger, provider: Provider, project: Project, request: Any) -> tuple[Any, Any]:
    """(wire, record): the native request as the ledger recorded it, with every file aivp had uploaded
    uploaded again, and its record form with the new URLs.

    Raises InputFileError when an input cannot be rebuilt (an inline data: URI, a file gone since)."""
    if isinstance(request, list):
        pairs = [await reupload(ledger, provider, project, v) for v in request]
        return [w for w, _ in pairs], [r for _, r in pairs]
    if not isinstance(request, dict):
        return request, request
    if request.get("kind") == "path" and "sha256" in request:
        if request.get("path"):
            path = project.input_path(request["path"])
        else:  # a large data: URI, spooled to a file in aivp's state folder
            path = project.state_dir / "inputs" / str(request["sha256"])
        if not path.is_file():
            raise InputFileError(f"{request.get('path') or 'an inline input'} is no longer there to upload again.")
        ledger.forget_upload(str(request["sha256"]), provider.name)
        ref = InputRef(raw=str(path), kind="path", path=path, sha256=str(request["sha256"]),
                       mime=request.get("mime"), size=request.get("bytes"))
        url = (await upload(ledger, provider, ref, fresh=True))[0]
        return url, {**request, "url": url}
    if request.get("kind") == "url" and isinstance(request.get("url"), str) and set(request) <= {"kind", "url"}:
        return request["url"], request
    if request.get("kind") == "data":
        raise InputFileError("an input was sent inline (a data: URI) and is not kept; call the tool again.")
    fields = {k: await reupload(ledger, provider, project, v) for k, v in request.items()}
    return {k: w for k, (w, _) in fields.items()}, {k: r for k, (_, r) in fields.items()}


def uploaded_files(request: Any) -> bool:
    """Whether a recorded request holds a project file aivp uploaded (the only inputs a re-upload can fix)."""
    if isinstance(request, list):
        return any(uploaded_files(v) for v in request)
    if isinstance(request, dict):
        if request.get("kind") == "path" and request.get("url"):
            return True
        return any(uploaded_files(v) for v in request.values())
    return False
