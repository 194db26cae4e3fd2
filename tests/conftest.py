"""Shared fixtures: hermetic environment, one sandbox per session, settings and an in-memory client.

Nothing leaves 127.0.0.1: provider URLs point at the sandbox, keys are fake, and the user's
~/.aivp/.env is never read (AIVP_HOME points at a temporary folder).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
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
    fast = dict(keys={name: Secret(key) for name, key in wanted.items() if key is not None},
                retry_base_s=0.01, retry_cap_s=2.0, poll_initial_s=0.02, poll_max_s=0.2,
                sse_idle_s=2.0, wait_s=20.0, connect_timeout_s=5.0, read_timeout_s=20.0)
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
