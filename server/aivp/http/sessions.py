"""Browser sessions for a page served behind aivp's HTTP auth (the review page under /review/).

A browser sends no bearer header with a navigation, an `<img>` or a `<video>`, so the page gets a cookie:

- `GET {prefix}link` with a token (scope `need`) answers `{"url": "<base>{prefix}?ticket=...", ...}`: a
  one-time link, valid for TICKET_TTL_S, to open in a browser;
- `GET {prefix}?ticket=...` spends the ticket, sets the cookie and redirects to `{prefix}` (so the ticket
  leaves the address bar); `GET {prefix}` with a token sets the cookie too (clients that can add a header);
- from then on a request under `prefix` with the cookie acts as the token that opened it (its subject and
  scopes) until the session ends (SESSION_TTL_S, or the token's own expiry, whichever is first).

The cookie is HttpOnly, SameSite=Lax, scoped to `prefix` (never sent to /mcp or /files/), Secure when the
public URL is https. A request under `prefix` that is not GET/HEAD must come from the page's own origin
(the request's Host, AIVP_PUBLIC_URL's or one in AIVP_ALLOWED_ORIGINS) when it names one.
Sessions live in memory: a restart ends them. With no auth configured (loopback only) the page is open
and `link` answers its plain URL. Neither the ticket nor the session id is ever logged.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import GENERATE
from .guard import challenge, unauthorized

log = logging.getLogger("aivp.http")

COOKIE = "aivp_review"
TICKET_TTL_S = 600  # a link from {prefix}link opens the page once, within 10 minutes
SESSION_TTL_S = 12 * 3600
MAX_LIVE = 1000  # tickets and sessions kept at most (the oldest go first)
GONE = ("This review link was already used, has expired or is wrong. Get a new one with your token: "
        "GET {prefix}link (see README, 'Remote use').")


class _Store:
    """Secrets (kept by their SHA-256, so a lookup's timing says nothing about them) -> (expiry, token)."""

    def __init__(self) -> None:
        self._live: dict[bytes, tuple[float, AccessToken | None]] = {}

    def add(self, ttl_s: float, token: AccessToken | None) -> tuple[str, float]:
        now = time.time()
        self._live = {k: v for k, v in self._live.items() if v[0] > now}
        while len(self._live) >= MAX_LIVE:
            self._live.pop(next(iter(self._live)))
        expires = now + ttl_s
        if token is not None and token.expires_at is not None:
            expires = min(expires, float(token.expires_at))
        secret = secrets.token_urlsafe(32)
        # the token's value is not kept: only who it names and what it may do
        self._live[_digest(secret)] = (expires, token.model_copy(update={"token": "session"}) if token else None)
        return secret, expires - now

    def get(self, secret: str | None, *, spend: bool = False) -> tuple[bool, AccessToken | None]:
        if not secret:
            return False, None
        key = _digest(secret)
        found = self._live.pop(key, None) if spend else self._live.get(key)
        if found is None or found[0] <= time.time():
            return False, None
        return True, found[1]


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class PageSessions:
    """ASGI middleware, inside the bearer authentication: tickets, cookies and same-origin writes under `prefix`."""

    def __init__(self, app: ASGIApp, *, prefix: str, base: str, auth_on: bool, need: str,
                 metadata: str | None = None, origins: Sequence[str] = ()) -> None:
        self.app, self.prefix, self.base = app, prefix, base.rstrip("/")
        self.auth_on, self.need, self.metadata = auth_on, need, metadata
        self.origins = {o.rstrip("/") for o in origins}  # besides the request's own: AIVP_PUBLIC_URL's, the allowed
        self.secure = base.startswith("https://")
        self.tickets, self.sessions = _Store(), _Store()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope.get("method", "GET")
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if method not in ("GET", "HEAD") and origin and urlsplit(origin).netloc != headers.get("host") \
                and origin.rstrip("/") not in self.origins:
            log.info("refused a %s under %s from another origin", method, self.prefix)
            return await PlainTextResponse("Cross-origin requests are refused.", status_code=403)(scope, receive, send)
        user = scope.get("user")
        token = user.access_token if isinstance(user, AuthenticatedUser) else None
        if path == self.prefix + "link" and method == "GET":
            return await self._link(token)(scope, receive, send)
        if not self.auth_on:
            return await self.app(scope, receive, send)
        if token is not None:
            if path == self.prefix and method == "GET" and self._may(token):
                return await self.app(scope, receive, self._with_cookie(send, token))
            return await self.app(scope, receive, send)
        ticket = QueryParams(scope.get("query_string", b"").decode("latin-1")).get("ticket")
        if path == self.prefix and ticket is not None:
            ok, holder = self.tickets.get(ticket, spend=True)
            if not ok or holder is None:
                return await PlainTextResponse(GONE.format(prefix=self.prefix), status_code=401)(scope, receive, send)
            response = RedirectResponse(self.prefix, status_code=303)
            self._set_cookie(response, holder)
            return await response(scope, receive, send)
        ok, holder = self.sessions.get(cookie_parser(headers.get("cookie", "")).get(COOKIE))
        if ok and holder is not None:  # the session acts as the token that opened it
            scope = {**scope, "user": AuthenticatedUser(holder)}
        await self.app(scope, receive, send)

    def _may(self, token: AccessToken) -> bool:
        return self.need in token.scopes or GENERATE in token.scopes

    def _link(self, token: AccessToken | None) -> Response:
        if not self.auth_on:
            return JSONResponse({"url": f"{self.base}{self.prefix}", "expires_in_s": None})
        if token is None:
            return unauthorized(self.metadata)
        if not self._may(token):
            return challenge(403, "insufficient_scope", f"The review page needs the {self.need} scope.",
                             self.metadata, self.need)
        ticket, ttl = self.tickets.add(TICKET_TTL_S, token)
        return JSONResponse({"url": f"{self.base}{self.prefix}?ticket={ticket}", "expires_in_s": int(ttl),
                             "opens": "once, in a browser; the browser then keeps a session cookie"},
                            headers={"cache-control": "no-store"})

    def _set_cookie(self, response: Response, token: AccessToken) -> None:
        session, ttl = self.sessions.add(SESSION_TTL_S, token)
        response.set_cookie(COOKIE, session, max_age=int(ttl), path=self.prefix, httponly=True, samesite="lax",
                            secure=self.secure)

    def _with_cookie(self, send: Send, token: AccessToken) -> Send:
        """`send`, adding a new session's cookie to a successful answer."""

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                carrier = Response()
                self._set_cookie(carrier, token)
                cookies = [(k, v) for k, v in carrier.raw_headers if k == b"set-cookie"]
                message = {**message, "headers": [*message.get("headers", []), *cookies]}
            await send(message)

        return sending
