"""ASGI guards in front of aivp's routes: Host/Origin allow-lists, bearer auth and per-tool scopes.

- `HostCheck` (outermost): DNS-rebinding protection for every route but /healthz (421 for a Host that is
  not allowed; 403 for a browser Origin that is not allowed on /mcp), before any credential is looked at.
- `McpGuard` wraps the SDK's /mcp endpoint: 401 without a valid token (with the RFC 9728 metadata link
  when OAuth is configured), 403 naming `aivp:generate` for a `tools/call` of a tool that spends or
  changes the project when the token has only `aivp:read`. The SDK's own check allows one global scope
  list only; this reads the tool name from the body (and the 2026-07-28 `Mcp-Name` header, which the SDK
  checks against the body).
- `Protected` wraps any other route (file downloads and uploads, the review UI): a token with the scope, or
  a signed link (`links.py`) for GET and HEAD, or no auth configured at all (loopback only).
- `BodyLimit`: 4 MiB per request body everywhere but uploads, which their handler caps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import RequestBodyLimitMiddleware
from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import GENERATE, READ, SCOPES
from .links import valid_signature

log = logging.getLogger("aivp.http")


def allowed(value: str, patterns: Iterable[str]) -> bool:
    """`value` is a pattern, or matches `base:*` with any port (the SDK's rule for Host and Origin)."""
    for p in patterns:
        if value == p or (p.endswith(":*") and value.startswith(p[:-1]) and value[len(p) - 1:].isdigit()):
            return True
    return False


class HostCheck:
    def __init__(self, app: ASGIApp, hosts: list[str], origins: list[str], mcp_path: str = "/mcp") -> None:
        self.app, self.hosts, self.origins, self.mcp_path = app, hosts, origins, mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not allowed(host, self.hosts):
            log.info("refused a request for Host %r (not in the allowed hosts; see AIVP_ALLOWED_HOSTS)", host)
            return await PlainTextResponse("Invalid Host header", status_code=421)(scope, receive, send)
        origin = headers.get("origin")
        if origin and scope["path"] == self.mcp_path and not allowed(origin, self.origins):
            log.info("refused a request from Origin %r (see AIVP_ALLOWED_ORIGINS)", origin)
            return await PlainTextResponse("Invalid Origin header", status_code=403)(scope, receive, send)
        await self.app(scope, receive, send)


class BodyLimit:
    """The SDK's 4 MiB request cap on every route, except uploads (PUT /files/..., capped by their handler)."""

    def __init__(self, app: ASGIApp, max_body: int, upload_prefix: str) -> None:
        self.app = app
        self.limited = RequestBodyLimitMiddleware(app, max_body)
        self.upload_prefix = upload_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "PUT" and scope["path"].startswith(self.upload_prefix):
            return await self.app(scope, receive, send)
        await self.limited(scope, receive, send)


def scopes_of(scope: Scope) -> set[str] | None:
    """The scopes of the request's token, or None when it has no valid one."""
    user = scope.get("user")
    return set(user.scopes) if isinstance(user, AuthenticatedUser) else None


def challenge(status: int, error: str, description: str, metadata: str | None, need: str | None = None) -> Response:
    """A 401/403 with the RFC 6750 WWW-Authenticate header (and the RFC 9728 metadata link under OAuth)."""
    parts = [f'error="{error}"', f'error_description="{description}"']
    if need:
        parts.append(f'scope="{need}"')
    if metadata:
        parts.append(f'resource_metadata="{metadata}"')
    if status == 403:
        log.info("refused a request: %s", description)
    body = {"error": error, "error_description": description, **({"scope": need} if need else {})}
    return JSONResponse(body, status_code=status, headers={"WWW-Authenticate": "Bearer " + ", ".join(parts)})


def unauthorized(metadata: str | None) -> Response:
    log.info("refused a request without a valid bearer token")
    return challenge(401, "invalid_token", "A valid bearer token is required.", metadata, " ".join(SCOPES))


class McpGuard:
    """Auth in front of the SDK's /mcp endpoint; `writers()` names the tools that need aivp:generate."""

    def __init__(self, app: ASGIApp, writers: Callable[[], Awaitable[set[str]]], metadata: str | None) -> None:
        self.app, self.writers, self.metadata = app, writers, metadata

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        have = scopes_of(scope)
        if have is None:
            return await unauthorized(self.metadata)(scope, receive, send)
        if not have & {READ, GENERATE}:
            return await challenge(403, "insufficient_scope", f"This server needs the {READ} scope.", self.metadata,
                                   READ)(scope, receive, send)
        if GENERATE in have or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        body, more = await _read_body(receive)  # the app-wide body limit has already capped it
        names = _tool_calls(body)
        header = Headers(scope=scope)
        if header.get("mcp-method") == "tools/call" and header.get("mcp-name"):
            names.add(header["mcp-name"])
        blocked = sorted(names & await self.writers())
        if blocked:
            text = f"{', '.join(blocked)} spends money or changes the project and needs the {GENERATE} scope."
            return await challenge(403, "insufficient_scope", text, self.metadata, GENERATE)(scope, receive, send)
        await self.app(scope, _replay(body, more, receive), send)


class Protected:
    """A route that needs a token with `need` (or a signed link for GET/HEAD), unless auth is off."""

    def __init__(self, app: ASGIApp, *, auth_on: bool, link_key: bytes | None, metadata: str | None,
                 need: str = READ) -> None:
        self.app, self.auth_on, self.link_key, self.metadata, self.need = app, auth_on, link_key, metadata, need

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.auth_on:
            return await self.app(scope, receive, send)
        have = scopes_of(scope)
        if have is not None and (self.need in have or GENERATE in have):
            return await self.app(scope, receive, send)
        if scope.get("method") in ("GET", "HEAD") and self.link_key is not None:
            query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
            if valid_signature(self.link_key, scope["path"], query.get("exp"), query.get("sig")):
                return await self.app(scope, receive, send)
        if have is None:
            return await unauthorized(self.metadata)(scope, receive, send)
        await challenge(403, "insufficient_scope", f"This needs the {self.need} scope.", self.metadata,
                        self.need)(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    chunks: list[bytes] = []
    trailing: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            trailing.append(message)
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), trailing


def _replay(body: bytes, trailing: list[Message], receive: Receive) -> Receive:
    queue: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *trailing]

    async def replay() -> Message:
        return queue.pop(0) if queue else await receive()

    return replay


def _tool_calls(body: bytes) -> set[str]:
    """The tool names a JSON-RPC body calls (a batch is checked message by message)."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return set()
    messages = data if isinstance(data, list) else [data]
    names = set()
    for m in messages:
        if isinstance(m, dict) and m.get("method") == "tools/call" and isinstance(m.get("params"), dict):
            name = m["params"].get("name")
            if isinstance(name, str):
                names.add(name)
    return names
