"""Scripted misbehaviour: the next N requests to a named route fail in a chosen way.

A fault is armed with `Sandbox.fault(route, ...)` or `POST /_sandbox/faults` and consumed by the
requests that match it. Actions:

- ``respond``: answer `status` (default 500) with `headers` and `body` instead of the real answer.
- ``drop``: close the TCP connection without any response (a transport error for the client).
- ``drop_body``: send the real status line, headers and part of the body, then close (a truncated
  download, or an SSE stream dropped after its first event).
- ``stall``: wait `delay` seconds (default 30) before handling the request, and skip it if the
  client has given up by then; on the ``stream`` route, send the SSE headers and then nothing.
- ``malformed``: answer 200 (or `status`) with a body that is not valid JSON.

With ``after=True`` the real handler runs first (a submit is recorded and its job created) and the
client then gets the faulty answer: the "did my submit go through?" case.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import anyio
from starlette.responses import Response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import Message, Receive, Scope, Send

    from .state import SandboxState

ACTIONS = ("respond", "drop", "drop_body", "stall", "malformed")
STALL_S = 30.0  # default stall: longer than any sane client timeout in a test
SILENT_STREAM_S = 3600.0

_NGINX = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def _ingress(code: int) -> dict[str, Any]:
    # what the load balancer in front of fal answers: HTML, no x-fal-request-id; clients retry these
    phrase = HTTPStatus(code).phrase
    return {"status": code, "headers": {"content-type": "text/html"}, "body": _NGINX.format(code=code, phrase=phrase)}


PRESETS: dict[str, dict[str, Any]] = {
    "ingress_502": _ingress(502),
    "ingress_503": _ingress(503),
    "ingress_504": _ingress(504),
    # answered by fal itself (carries x-fal-request-id): a fal-client-compatible client does NOT retry
    "fal_503": {
        "status": 503,
        "headers": {"x-fal-request-id": "auto", "x-fal-error-type": "runner_scheduling_failure"},
        "body": {"detail": "Runner scheduling failure", "error_type": "runner_scheduling_failure"},
    },
    "user_timeout_504": {
        "status": 504,
        "headers": {
            "x-fal-request-id": "auto",
            "x-fal-request-timeout-type": "user",
            "x-fal-error-type": "request_timeout",
        },
        "body": {"detail": "Request timed out", "error_type": "request_timeout"},
    },
    "rate_limit_429": {"status": 429, "body": {"detail": "Too many requests"}},
    "locked": {
        "status": 403,
        "body": {
            "detail": "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
        },
    },
    "server_error_500": {"status": 500, "body": {"detail": "Internal Server Error"}},
    "expired_signature": {
        "status": 403,
        "headers": {"content-type": "application/xml; charset=UTF-8"},
        "body": "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code>"
        "<Message>The provided token has expired.</Message>"
        "<Details>Request signature expired</Details></Error>",
    },
}


@dataclass
class Fault:
    """One armed fault. `times=None` keeps it armed until reset."""

    route: str
    action: str = "respond"
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    times: int | None = 1
    delay: float = 0.0
    after: bool = False
    match: str | None = None  # only requests whose path contains this
    cut_at: int | None = None  # drop_body: bytes of body to send (default: half, or the first chunk)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(d["body"], bytes):
            d["body"] = d["body"].decode("utf-8", "replace")
        return d


class FaultBook:
    """Armed faults, consumed first-armed-first by the requests that match them."""

    def __init__(self, route_names: frozenset[str]):
        self.route_names = route_names
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, route: str, *, preset: str | None = None, times: int | None = 1, **kw: Any) -> Fault:
        if route not in self.route_names:
            raise ValueError(f"unknown fault route {route!r}; known: {', '.join(sorted(self.route_names))}")
        given = {k: v for k, v in kw.items() if v is not None}  # None = "not given", use the default
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"unknown fault preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
            base = PRESETS[preset]
            headers = {**base.get("headers", {}), **given.get("headers", {})}
            given = {**base, **given, "headers": headers}
        if given.get("action", "respond") not in ACTIONS:
            raise ValueError(f"unknown fault action {given['action']!r}; known: {', '.join(ACTIONS)}")
        fault = Fault(route=route, times=times, **given)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, route: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.route == route and (f.match is None or f.match in path):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    return f
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


# -- responses that misbehave at the transport level ----------------------------------------


async def abort_connection(scope: Scope) -> None:
    """Close the client's TCP connection now, whatever was (not) sent on it."""
    cycle = scope.get("aivp.cycle")
    if cycle is None:  # not under uvicorn: an exception is the closest we can get
        raise ConnectionAbortedError("sandbox fault: connection dropped")
    cycle.transport.close()
    # wait until uvicorn has seen the connection go, so it does not try to answer with a 500
    with anyio.move_on_after(2.0):
        while not cycle.disconnected:
            await anyio.sleep(0.005)


class DropConnection(Response):
    """Close the connection without sending a single byte."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await abort_connection(scope)


class _Cut(Exception):
    pass


def _has_cut(exc: BaseException) -> bool:
    if isinstance(exc, _Cut):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_has_cut(e) for e in exc.exceptions)
    return False


class CutBody(Response):
    """Send `inner`'s status and headers and part of its body, then close the connection."""

    def __init__(self, inner: Response, cut_at: int | None = None) -> None:
        super().__init__(status_code=inner.status_code)
        self.inner = inner
        self.cut_at = cut_at

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.cut_at
        sent = 0

        async def cutting_send(message: Message) -> None:
            nonlocal limit, sent
            if message["type"] == "http.response.start":
                if limit is None:
                    length = dict(message.get("headers", [])).get(b"content-length")
                    limit = int(length) // 2 if length else None
                await send(message)
                return
            body = message.get("body", b"")
            if not body and message.get("more_body"):
                return
            if limit is None:  # unknown length (a stream): the first chunk gets through, then the cut
                await send({"type": "http.response.body", "body": body, "more_body": True})
                raise _Cut
            room = limit - sent
            if len(body) >= room or not message.get("more_body"):
                part = body[: max(0, min(room, len(body) - 1))]  # never the whole body
                await send({"type": "http.response.body", "body": part, "more_body": True})
                raise _Cut
            sent += len(body)
            await send({"type": "http.response.body", "body": body, "more_body": True})

        try:
            await self.inner(scope, receive, cutting_send)
        except BaseException as exc:
            if not _has_cut(exc):
                raise
        await abort_connection(scope)


class SilentStream(Response):
    """SSE headers, then silence for `seconds` (or until the client leaves): a stalled stream."""

    def __init__(self, seconds: float) -> None:
        super().__init__(status_code=200, media_type="text/event-stream")
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with anyio.move_on_after(self.seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def fault_response(fault: Fault) -> Response:
    """The answer of a ``respond`` or ``malformed`` fault."""
    status = fault.status or (200 if fault.action == "malformed" else 500)
    headers = {k.lower(): (str(uuid.uuid4()) if v == "auto" else v) for k, v in fault.headers.items()}
    if fault.action == "malformed":
        body: Any = b'{"status": "IN_PROGRESS", "request_id": "'
        headers.setdefault("content-type", "application/json")
    elif fault.body is None:
        body = json.dumps({"detail": HTTPStatus(status).phrase}).encode()
        headers.setdefault("content-type", "application/json")
    elif isinstance(fault.body, (dict, list)):
        body = json.dumps(fault.body).encode()
        headers.setdefault("content-type", "application/json")
    else:
        body = fault.body.encode() if isinstance(fault.body, str) else fault.body
        headers.setdefault("content-type", "text/plain; charset=utf-8")
    media_type = headers.pop("content-type")
    return Response(body, status_code=status, headers=headers, media_type=media_type)


Handler = Callable[["Request"], Awaitable[Response]]


def guarded(state: SandboxState, route: str, handler: Handler) -> Handler:
    """Wrap a route handler: record the request, then let an armed fault take over if there is one."""

    async def endpoint(request: Request) -> Response:
        state.record_request(route, request)
        fault = state.faults.take(route, request.url.path)
        if fault is None:
            return await handler(request)
        if fault.action == "stall" and route == "stream" and not fault.after:
            return SilentStream(fault.delay or SILENT_STREAM_S)
        response = await handler(request) if (fault.after or fault.action == "drop_body") else None
        if fault.action == "stall":
            if response is not None:  # after=True: processed at once, answered late
                await anyio.sleep(fault.delay or STALL_S)
                return response
            await request.body()  # read (and cache) the body first, so a late handler still has it
            await anyio.sleep(fault.delay or STALL_S)
            if await request.is_disconnected():  # the client gave up: nothing is processed
                return Response(status_code=499)
            return await handler(request)
        if fault.delay:
            await anyio.sleep(fault.delay)
        if fault.action == "drop_body":
            assert response is not None
            return CutBody(response, fault.cut_at)
        if fault.action == "drop":
            return DropConnection()
        return fault_response(fault)

    return endpoint
