"""The review page as an MCP App: the ui:// resources the tools point at, the media origins its CSP
lists, and the one line a result adds about the review view.
"""

from __future__ import annotations

import shlex
from typing import Any
from urllib.parse import urlsplit

from mcp.server.apps import client_supports_apps
from mcp.server.mcpserver import Context

VIEWS = ("candidates", "clips", "board")
# Where the providers serve their outputs (fal's CDN, Replicate's delivery hosts, BytePlus's TOS buckets):
# the only origins the page may load media from inside a host. Project files reach it through the bridge.
MEDIA_DOMAINS = ("https://fal.media", "https://*.fal.media", "https://replicate.delivery",
                 "https://*.replicate.delivery", "https://*.bytepluses.com", "https://*.volces.com")


def ui_uri(view: str) -> str:
    return f"ui://aivp/{view}.html"


def ui_meta(view: str) -> dict[str, Any]:
    """A tool's `_meta` pointing at the review view hosts with MCP Apps show beside its result."""
    return {"ui": {"resourceUri": ui_uri(view)}}


def media_url(url: Any) -> str | None:
    """`url` when the page may load it inside a host (https, a provider's media origin), else None."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    for domain in MEDIA_DOMAINS:
        allowed = domain.removeprefix("https://")
        if parts.scheme == "https" and (host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:]))):
            return url
    return None


def review_line(ctx: Context[Any, Any], root: Any) -> str:
    """One short line telling the agent where the user can look and choose."""
    try:
        apps = client_supports_apps(ctx)
    except Exception:  # no session (a direct call): the browser line
        apps = False
    if apps:
        return "The review view beside this result lets the user look and choose."
    return f"To let the user look and choose: aivp review --project {shlex.quote(str(root))}"
