"""The one place caller text becomes part of a provider URL: endpoint ids and request ids, checked and quoted.

An endpoint id is `owner/name[/path]` (fal also has `12345-alias` and `workflows/owner/app`): every
segment starts with a letter, digit or underscore and holds only letters, digits, `.`, `_`, `~` and
`-`, so `.` and `..` can never steer a keyed request to another path of the provider's host. Request
ids a caller names (to adopt a job made outside aivp) must match the provider's own format. Every
segment is percent-quoted when a URL is built, whatever its source.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ..errors import InvalidParameterError

SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._~-]*$")
MAX_SEGMENTS = 8


def endpoint_segments(endpoint: str, provider: str) -> list[str]:
    """The segments of an endpoint id, or an InvalidParameterError that says what an id looks like."""
    text = endpoint.strip()
    parts = text.split("/")
    if not text or len(parts) > MAX_SEGMENTS or any(not SEGMENT.fullmatch(p) for p in parts):
        raise InvalidParameterError(
            f"{endpoint!r} is not a {provider} endpoint id: an id is owner/name[/path], each part made of letters, "
            "digits, '.', '_' and '-' and not starting with a dot. Look the model up with search_models.")
    return parts


def url_path(*segments: str) -> str:
    """Segments joined with '/', each percent-quoted (a '/' inside one stays data)."""
    return "/".join(quote(s, safe="") for s in segments)


def check_request_id(request_id: str, pattern: re.Pattern[str], provider: str, example: str) -> str:
    """A request id a caller typed, in the provider's format, or an error showing one."""
    rid = request_id.strip()
    if not pattern.fullmatch(rid):
        raise InvalidParameterError(
            f"{request_id[:80]!r} is not a {provider} request id; they look like {example}. Copy it from the "
            f"provider's dashboard (or the job's record) and call again.")
    return rid
