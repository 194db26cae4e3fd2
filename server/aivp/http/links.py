"""Download links to project files and their MIME types (standard library only: the tools import this).

Over HTTP a result names each file three ways: its project path, its `aivp://files/...` resource, and a
link on the same server that a browser can open. The link is signed (HMAC-SHA256 over the path and an
expiry, with a key made at server start), so it works without a bearer header for `LINK_TTL_S` and only
for that one file; the same route also takes the server's normal bearer auth. Nothing here reads files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
import time
from urllib.parse import quote

LINK_TTL_S = 3600  # how long a signed download link works

# The types aivp makes and reads, fixed here so they do not depend on the host's mime.types.
_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
    ".avif": "image/avif", ".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
    ".mkv": "video/x-matroska", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
    ".json": "application/json", ".md": "text/markdown", ".txt": "text/plain", ".svg": "image/svg+xml",
}
# Shown inline in a browser; anything else is served as an attachment (an HTML or SVG file in the project
# must never run as a page of this server's origin).
INLINE = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/avif", "video/", "audio/")


def mime_type(path: str) -> str:
    """The MIME type of a project file, by its extension."""
    dot = path.rfind(".")
    ext = path[dot:].lower() if dot >= 0 else ""
    return _TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def inline(media_type: str) -> bool:
    return media_type.startswith(INLINE)


def file_path(rel: str) -> str:
    """The URL path (unquoted) that serves a project file: /files/<project path>."""
    return "/files/" + rel.lstrip("/")


def signature(key: bytes, path: str, expires: int) -> str:
    """HMAC-SHA256 of (URL path, expiry), URL-safe base64 without padding."""
    mac = hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def signed_url(base: str, key: bytes, path: str, *, ttl_s: int = LINK_TTL_S, now: float | None = None) -> str:
    """`<base><path>?exp=...&sig=...`: GET/HEAD of that path for `ttl_s` seconds with no other auth (the path
    unquoted, as the server sees it, e.g. file_path("image/frames/shot-01-ff.png"))."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{base.rstrip('/')}{quote(path)}?exp={expires}&sig={signature(key, path, expires)}"


def valid_signature(key: bytes, path: str, expires: str | None, sig: str | None, *, now: float | None = None) -> bool:
    """True when `sig` was made by `signed_url` for this path and has not expired (compared in constant time)."""
    if not expires or not sig or not expires.isdigit():
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature(key, path, int(expires)), sig)
