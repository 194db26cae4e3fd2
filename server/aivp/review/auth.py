"""The standalone review server's auth: a one-time link token exchanged for a session cookie.

`aivp review` prints `http://127.0.0.1:PORT/?token=…`. The first request with that token gets a cookie
named after the port (cookies are shared by every port of a host, so two review servers must not
overwrite each other's) and a redirect that drops the token from the address bar; the token is then
spent. Everything else needs the cookie. The Host header must be this loopback address (DNS rebinding),
and a request that changes something must not come from another origin.
"""

from __future__ import annotations

import hmac
import secrets
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

GONE = ("This review link was already used or is wrong. Each link works once; run `aivp review` again for "
        "a new one (a browser that opened it keeps working).")


class TokenGate:
    """ASGI middleware: the one-time token -> cookie exchange, then the cookie on every request."""

    def __init__(self, app: ASGIApp, *, port: int, token: str | None = None) -> None:
        self.app, self.port = app, port
        self.token: str | None = token or secrets.token_urlsafe(24)
        self.cookie = f"aivp_review_{port}"
        self.sessions: set[str] = set()
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.origins = {f"http://{h}" for h in self.hosts}

    def _valid(self, value: str | None) -> bool:
        return value is not None and any(hmac.compare_digest(value, s) for s in self.sessions)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        response = self._check(request)
        if response is None:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)

    def _check(self, request: Request) -> Response | None:
        if request.headers.get("host") not in self.hosts:
            return PlainTextResponse("Open the review at 127.0.0.1 (the link aivp review printed).", status_code=421)
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin is not None and origin not in self.origins:
            return PlainTextResponse("Cross-origin requests are refused.", status_code=403)
        if self._valid(request.cookies.get(self.cookie)):
            return None
        offered = request.query_params.get("token")
        if request.url.path == "/" and offered and self.token and hmac.compare_digest(offered, self.token):
            self.token = None  # spent
            session = secrets.token_urlsafe(32)
            self.sessions.add(session)
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(self.cookie, session, httponly=True, samesite="strict", path="/")
            return response
        return PlainTextResponse(GONE, status_code=401)
