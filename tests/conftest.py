"""Shared fixtures: hermetic environment, one sandbox per session, settings and an in-memory client.

Nothing leaves 127.0.0.1: provider URLs point at the sandbox, keys are fake, and the user's
~/.aivp/.env is never read (AIVP_HOME points at a temporary folder).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mcp import Client

from aivp.settings import Secret, Settings

# A distinctive fake key: tests grep every output for both halves of it.
KEY_ID = "aivp-test-key-id-7Qz"
KEY_SECRET = "S3cr3t-Never-Print-9f2a41"
KEY = f"{KEY_ID}:{KEY_SECRET}"

PROVIDER_VARS = ("FAL_KEY", "FAL_API_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "REPLICATE_API_TOKEN", "ARK_API_KEY",
                 "BYTEPLUS_API_KEY")


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AIVP_") or name in PROVIDER_VARS:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("AIVP_HOME", str(home / ".aivp"))
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Any]:
    from aivp.sandbox import Sandbox

    sb = Sandbox(port=0, queue_s=0.05, image_s=0.15, video_s=0.4)
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_server: Any) -> Iterator[Any]:
    """The session sandbox, reset (faults, timings, counters kept but compared by delta) for each test."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


def make_settings(project: Path, sandbox: Any | None = None, *, env: Mapping[str, str] | None = None,
                  keys: Mapping[str, str | None] | None = None, **overrides: Any) -> Settings:
    """Settings for a test: the sandbox's URLs (then `env`), fake keys and fast HTTP timings.

    The one place tests set keys: fal gets the fake KEY unless `keys` says otherwise, and `keys`
    maps a provider to its key or to None for none, e.g. `keys={"fal": None, "replicate": TOKEN}`.
    """
    environ = {**(sandbox.env() if sandbox is not None else {}), **(env or {})}
    s = Settings.from_env(environ, project_dir=project)
    wanted = {"fal": KEY, **(keys or {})}
    # Spend consent is off here (AIVP_CONFIRM_ABOVE_USD < 0) so the other tests need no confirmation;
    # tests/test_consent.py turns it on and tests it.
    fast = dict(keys={name: Secret(key) for name, key in wanted.items() if key is not None},
                retry_base_s=0.01, retry_cap_s=2.0, poll_initial_s=0.02, poll_max_s=0.2,
                sse_idle_s=2.0, wait_s=20.0, connect_timeout_s=5.0, read_timeout_s=20.0,
                confirm_above_usd=s.confirm_above_usd if "AIVP_CONFIRM_ABOVE_USD" in environ else -1.0)
    fast.update(overrides)
    return replace(s, **fast)


@pytest.fixture
def settings(project: Path, sandbox: Any) -> Settings:
    return make_settings(project, sandbox)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Any]:
    from mcp import Client

    from aivp.app import build_server

    async with Client(build_server(settings)) as c:
        yield c


@pytest.fixture
async def paid_client(project: Path, sandbox: Any) -> AsyncIterator[Any]:
    """A client whose providers count as paid ones (settings.sandboxes=()): the sandbox stands in for fal,
    Replicate and BytePlus, and its jobs are spending, for tests of costs, commitments and the budget."""
    from mcp import Client

    from aivp.app import build_server

    async with Client(build_server(make_settings(project, sandbox, sandboxes=()))) as c:
        yield c


def all_text(root: Path) -> str:
    """Every readable byte under root (ledger included), for secret scans."""
    chunks = []
    for p in root.rglob("*"):
        if p.is_file():
            chunks.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)


# ---------------------------------------------------------------- helpers shared by the tool tests

def png(path: Path, size: tuple[int, int] = (640, 360), color: str = "teal") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def partials(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.endswith((".part", ".tmp"))]


async def ok(client: Client, tool: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = await client.call_tool(tool, args, **kw)
    assert not r.is_error, r.content[0].text if r.content else r
    return r.structured_content  # type: ignore[return-value]


async def refused(client: Client, tool: str, args: dict[str, Any]) -> str:
    r = await client.call_tool(tool, args)
    assert r.is_error, f"{tool} should have failed: {r.structured_content}"
    text = r.content[0].text
    assert isinstance(text, str)
    return text


# ---------------------------------------------------------------- aivp over HTTP (tests/test_http*.py, test_consent.py)

TOKENS = {"alice": "alice-token-7f3a9c1e5b2d", "bob": "bob-token-0d8e6a4c2f1b"}  # AIVP_HTTP_TOKENS in the HTTP tests


class Recorder:
    """ASGI middleware keeping every response header and body byte the app sends (for secret scans)."""

    def __init__(self, app: Any, sink: list[bytes]) -> None:
        self.app, self.sink = app, sink

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def keep(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.sink.append(b"\n".join(k + b": " + v for k, v in message.get("headers", [])))
            elif message["type"] == "http.response.body":
                self.sink.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)


@asynccontextmanager
async def http_server(settings: Settings, *, tokens: Mapping[str, str] | None = None, routes: Any = (),
                      record: list[bytes] | None = None, review: bool = False) -> AsyncIterator[str]:
    """aivp's HTTP app (`aivp serve --http` without the process) under uvicorn on a free loopback port, in
    this event loop; yields the /mcp URL. With `settings.oauth_issuer` and no public URL, the public URL is
    this server's /mcp (the audience tokens must name). `review=True` mounts the review page as the CLI does."""
    import socket

    import anyio
    import uvicorn

    from aivp.app import build_server
    from aivp.http.app import create_app, http_settings, uvicorn_config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    if tokens:
        settings = replace(settings, http_tokens={k: Secret(v) for k, v in tokens.items()})
    if settings.oauth_issuer and not settings.public_url:
        settings = replace(settings, public_url=url)
    settings = http_settings(settings, "127.0.0.1", port)
    options: dict[str, Any] = {"routes": routes}
    if review:
        from aivp.cli import review_mount

        options = review_mount(settings)
    app: Any = create_app(build_server(settings), settings, **options)
    if record is not None:
        app = Recorder(app, record)
    server = uvicorn.Server(uvicorn_config(app))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(15):
                while not server.started:
                    await anyio.sleep(0.01)
            try:
                yield url
            finally:
                server.should_exit = True
    finally:
        sock.close()


@asynccontextmanager
async def http_client(url: str, token: str | None = None, *, mode: str = "auto", **kw: Any) -> AsyncIterator[Client]:
    """The SDK's streamable HTTP client (httpx2) with a bearer token, in one protocol era."""
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"} if token else None)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, **kw) as c:  # type: ignore[arg-type]
        yield c


class LocalIssuer:
    """An OAuth authorization server's public side on loopback: OpenID metadata and a JWKS, with keys the tests
    make (RS256), and tokens signed by them. Nothing is fetched from outside 127.0.0.1."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.keys: dict[str, Any] = {}
        self.published: list[str] = []
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
                elif self.path == "/jwks.json":
                    issuer.fetches += 1
                    body = {"keys": [issuer.jwk(kid) for kid in issuer.published]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.add_key("k1")

    def add_key(self, kid: str, publish: bool = True) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def jwk(self, kid: str) -> dict[str, Any]:
        import jwt

        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
        return {**data, "kid": kid, "use": "sig", "alg": "RS256"}

    def token(self, audience: str, *, sub: str = "carol", scope: str = "aivp:read aivp:generate", kid: str = "k1",
              expires_in: float = 600, issuer: str | None = None, signer: str | None = None, **claims: Any) -> str:
        import time

        import jwt

        now = int(time.time())
        payload = {"iss": issuer or self.url, "aud": audience, "sub": sub, "scope": scope, "iat": now,
                   "exp": now + int(expires_in), "client_id": "claude", **claims}
        return jwt.encode(payload, self.keys[signer or kid], algorithm="RS256", headers={"kid": kid})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture(scope="session")
def issuer() -> Iterator[LocalIssuer]:
    found = LocalIssuer()
    try:
        yield found
    finally:
        found.close()
