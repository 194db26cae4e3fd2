"""`aivp serve --http`: the SDK's streamable HTTP app of one aivp server, made safe to expose.

    settings = http_settings(Settings.from_env(...), host, port)   # download links: base URL + signing key
    server = build_server(settings)                                  # aivp.app (the CLI does both)
    serve(server, settings, host=host, port=port, routes=[...])      # or create_app(...) under any ASGI server

One `/mcp` endpoint serves both protocol eras (2026-07-28 stateless requests; 2025-11-25 sessions with
pushed notifications and elicitation), stateful with SSE responses, so progress, elicitation and
cancellation work as on stdio. The app adds: Host/Origin allow-lists on every route, bearer auth
(AIVP_HTTP_TOKENS and/or OAuth JWTs), per-tool scopes, RFC 9728 metadata, `/healthz` (no auth, says
only "ok"), `/files/...` downloads and uploads, a 4 MiB cap on other request bodies, and any extra routes a caller
passes (the review UI), which run behind the same auth; a browser page among them (`page_prefix`) also gets
one-time links and a session cookie (sessions.py). Binding to a non-loopback address without auth
configured is refused before anything starts.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import ConfigError
from ..project import Project
from ..settings import Secret, Settings
from .auth import GENERATE, READ, SCOPES, AnyOf, JwtTokens, StaticTokens
from .files import files_route, upload_route
from .guard import BodyLimit, HostCheck, McpGuard, Protected
from .sessions import PageSessions

log = logging.getLogger("aivp.http")

MCP_PATH = "/mcp"
MAX_BODY = 4 * 1024 * 1024  # the SDK's default; larger inputs go through upload_file, not base64 arguments
READ_TOOLS = {"queue_status"}  # not read-only (it can follow a job into the project) but only reads status
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
HOW_TO_AUTH = (
    "Configure auth first: set AIVP_HTTP_TOKENS=name:token (one per person; make a token with: python -c "
    "\"import secrets; print(secrets.token_urlsafe(32))\") and send it as 'Authorization: Bearer <token>', "
    "and/or AIVP_OAUTH_ISSUER and AIVP_PUBLIC_URL for OAuth (claude.ai connectors); see README, 'Remote use'. "
    "To stay on this machine only, use --host 127.0.0.1.")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_configured(settings: Settings) -> bool:
    return bool(settings.http_tokens or settings.oauth_issuer)


def check(settings: Settings, host: str) -> None:
    """Refuse a configuration that would expose the server (raises ConfigError saying what to set)."""
    if not is_loopback(host) and not auth_configured(settings):
        raise ConfigError(f"Refusing to serve on {host}: anyone who can reach it could spend on your provider "
                          f"keys. {HOW_TO_AUTH}")
    if settings.oauth_issuer and not settings.public_url:
        raise ConfigError("AIVP_OAUTH_ISSUER is set but AIVP_PUBLIC_URL is not: set it to this server's public MCP "
                          "URL, e.g. https://aivp.example.com/mcp (tokens must name it as their audience).")
    for name, url in (("AIVP_OAUTH_ISSUER", settings.oauth_issuer), ("AIVP_OAUTH_JWKS_URL", settings.oauth_jwks_url),
                      ("AIVP_PUBLIC_URL", settings.public_url)):
        if url and urlsplit(url).scheme != "https" and not is_loopback(urlsplit(url).hostname or ""):
            raise ConfigError(f"{name}={url} must be an https URL (plain http only for 127.0.0.1 or localhost).")
    if settings.public_url and not urlsplit(settings.public_url).path.rstrip("/").endswith(MCP_PATH):
        raise ConfigError(f"AIVP_PUBLIC_URL={settings.public_url} must be the URL of the MCP endpoint, ending in "
                          f"{MCP_PATH} (e.g. https://aivp.example.com/mcp).")


def public_base(settings: Settings, host: str, port: int) -> str:
    """Where clients reach this server: AIVP_PUBLIC_URL without /mcp, else the bound address."""
    if settings.public_url:
        return settings.public_url.rstrip("/").removesuffix(MCP_PATH)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return f"http://{shown}:{port}"


def http_settings(settings: Settings, host: str, port: int) -> Settings:
    """The settings of an HTTP server: results carry download links signed with a key made now."""
    check(settings, host)
    return replace(settings, download_base=public_base(settings, host, port),
                   link_key=settings.link_key or Secret(secrets.token_urlsafe(32)))


def allow_lists(settings: Settings, host: str) -> tuple[list[str], list[str]]:
    """(Host values, Origin values) accepted: loopback, AIVP_PUBLIC_URL's, the bound address, and the settings'."""
    hosts, origins = list(LOOPBACK_HOSTS), list(LOOPBACK_ORIGINS)
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        hosts += [parts.netloc, f"{parts.hostname}:*", parts.hostname or ""]
        origins.append(f"{parts.scheme}://{parts.netloc}")
    if not is_loopback(host) and host not in ("0.0.0.0", "::", ""):
        hosts += [host, f"{host}:*"]
    for h in settings.allowed_hosts:
        hosts += [h] if re.search(r":(\d+|\*)$", h) else [h, f"{h}:*"]
    origins += [o.rstrip("/") for o in settings.allowed_origins]
    return [h for h in dict.fromkeys(hosts) if h], list(dict.fromkeys(origins))


def verifier(settings: Settings) -> AnyOf | None:
    """The token verifier the settings ask for (None: no auth, loopback only)."""
    found: list[Any] = []
    if settings.http_tokens:
        found.append(StaticTokens(settings.http_tokens))
    if settings.oauth_issuer and settings.public_url:
        found.append(JwtTokens(settings.oauth_issuer, settings.public_url, settings.oauth_jwks_url))
    return AnyOf(*found) if found else None


Opener = Callable[[], AbstractAsyncContextManager[Any]]


def create_app(server: MCPServer[Any], settings: Settings, *, host: str = "127.0.0.1",
               routes: Sequence[BaseRoute] = (), route_scope: str = READ, page_prefix: str | None = None,
               lifespan: Opener | None = None) -> Starlette:
    """The ASGI app for `server` (build it with `http_settings(...)`'s settings).

    `routes` are extra Starlette routes (the review UI) served behind the same auth: a bearer token with
    `route_scope` (aivp:generate covers aivp:read), or for GET/HEAD a signed link (`links.signed_url` with
    `settings.link_key`); with no auth configured (loopback only) they are open like everything else. Inside
    them `request.user` is the caller (`request.user.access_token.subject`) when a token was sent. Under
    `page_prefix` (e.g. "/review/") a browser also gets in with a one-time link and then a session cookie
    (sessions.py). `lifespan` is entered while the app runs (the review page's backend)."""
    check(settings, host)
    tokens = verifier(settings)
    hosts, origins = allow_lists(settings, host)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH, json_response=False, stateless_http=False, max_request_body_size=MAX_BODY,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                                     allowed_origins=origins), host=host)
    metadata = None
    if settings.oauth_issuer and settings.public_url:
        resource = AnyHttpUrl(settings.public_url)
        metadata = str(build_resource_metadata_url(resource))
        app.router.routes.extend(create_protected_resource_routes(
            resource, [AnyHttpUrl(settings.oauth_issuer)], scopes_supported=list(SCOPES), resource_name="aivp"))
    auth_on = tokens is not None
    if auth_on:
        writers = _writers(server)
        for route in app.router.routes:
            if isinstance(route, Route) and route.path == MCP_PATH:
                route.app = McpGuard(route.app, writers, metadata)
    key = settings.link_key.get().encode() if settings.link_key else None
    project = Project(settings.project_dir, settings.extra_roots)
    uploads = upload_route(project, settings.max_upload_bytes)
    for route, need in [(files_route(project), READ), (uploads, GENERATE), *((r, route_scope) for r in routes)]:
        if hasattr(route, "app"):
            route.app = Protected(route.app, auth_on=auth_on, link_key=key, metadata=metadata, need=need)
        app.router.routes.append(route)
    app.router.routes.insert(0, Route("/healthz", _healthz, methods=["GET", "HEAD"]))
    # Middleware, innermost first (add_middleware puts each one outside the ones before it).
    if tokens is not None:
        app.add_middleware(AuthContextMiddleware)
    if page_prefix is not None:  # inside the bearer authentication, which has set scope["user"] by then
        public = [f"{p.scheme}://{p.netloc}" for p in [urlsplit(settings.public_url or "")] if p.netloc]
        app.add_middleware(PageSessions, prefix=page_prefix, base=settings.download_base or public_base(
            settings, host, 0), auth_on=auth_on, need=route_scope, metadata=metadata,
            origins=[*public, *settings.allowed_origins])
    if tokens is not None:
        app.add_middleware(AuthenticationMiddleware, backend=BearerAuthBackend(tokens), on_error=_auth_error)
    app.add_middleware(BodyLimit, max_body=MAX_BODY, upload_prefix="/files/")
    app.add_middleware(HostCheck, hosts=hosts, origins=origins, mcp_path=MCP_PATH)
    if lifespan is not None:
        _also_run(app, lifespan)
    return app


def _also_run(app: Starlette, opener: Opener) -> None:
    """Enter `opener()` inside the app's own lifespan (the SDK's session manager) and leave it before."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def both(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state, opener():
            yield state

    app.router.lifespan_context = both


def _writers(server: MCPServer[Any]) -> Any:
    """The tools that need aivp:generate: all but the read-only ones (and status), listed once on first use."""
    cache: set[str] = set()
    done = [False]

    async def writers() -> set[str]:
        if not done[0]:
            for t in await server.list_tools():
                if not (t.annotations and t.annotations.read_only_hint) and t.name not in READ_TOOLS:
                    cache.add(t.name)
            done[0] = True
        return cache

    return writers


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def _auth_error(conn: HTTPConnection, exc: Exception) -> Response:
    return PlainTextResponse("Bad credentials", status_code=400)


def serve(server: MCPServer[Any], settings: Settings, *, host: str, port: int, routes: Sequence[BaseRoute] = (),
          **options: Any) -> None:
    """Run the app under uvicorn until interrupted (logs go to stderr through the root logger, redacted);
    `options` are create_app's (route_scope, page_prefix, lifespan)."""
    import uvicorn

    app = create_app(server, settings, host=host, routes=routes, **options)
    how = ", ".join(filter(None, [
        f"bearer tokens for {', '.join(settings.http_tokens)}" if settings.http_tokens else "",
        f"OAuth tokens from {settings.oauth_issuer} for {settings.public_url}" if settings.oauth_issuer else "",
    ])) or "no auth (this machine only)"
    print(f"aivp: MCP over HTTP at {public_base(settings, host, port)}{MCP_PATH} (listening on {host}:{port}; "
          f"{how}); GET /healthz answers ok", file=sys.stderr, flush=True)
    if not is_loopback(host) and not settings.public_url:
        print("aivp: set AIVP_PUBLIC_URL to the address clients use (e.g. https://aivp.example.com/mcp): until then "
              "download links point at this machine's loopback address, and only loopback or AIVP_ALLOWED_HOSTS "
              "Host headers are served (others get 421)", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn_config(app, host=host, port=port)).run()


def uvicorn_config(app: Any, **options: Any) -> Any:
    """How aivp runs under uvicorn: logs through the root logger (redacted, stderr), no access log (it would
    show signed links), no Server header, a short grace period for open SSE streams at shutdown."""
    import uvicorn

    return uvicorn.Config(app, log_config=None, access_log=False, server_header=False, lifespan="on",
                          timeout_graceful_shutdown=5, **options)


__all__ = ["GENERATE", "READ", "check", "create_app", "http_settings", "serve"]
