"""The real `aivp serve --http` process: it refuses an exposed bind without auth, and serves a token holder end to
end (both eras, progress, a download) with no key or token in its log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from .conftest import KEY, KEY_ID, KEY_SECRET, TOKENS, all_text, http_client

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


def _env(sandbox: Any, project: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIVP_") and not k.startswith("FAL_")}
    return {**env, **sandbox.env(), "FAL_KEY": KEY, "AIVP_PROJECT_DIR": str(project), "AIVP_LOG_LEVEL": "DEBUG",
            "AIVP_HOME": str(project.parent / "home" / ".aivp"), **more}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_exposed_bind_without_auth_refuses_to_start(project: Path, sandbox: Any) -> None:
    port = _free_port()
    done = subprocess.run([sys.executable, "-m", "aivp", "serve", "--http", "--host", "0.0.0.0", "--port", str(port)],
                          env=_env(sandbox, project), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert "Refusing to serve on 0.0.0.0" in done.stderr and "AIVP_HTTP_TOKENS" in done.stderr
    assert "AIVP_OAUTH_ISSUER" in done.stderr and "--host 127.0.0.1" in done.stderr
    with pytest.raises(httpx2.HTTPError):
        httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


async def test_serve_http_end_to_end(project: Path, sandbox: Any, tmp_path: Path) -> None:
    port = _free_port()
    tokens = ",".join(f"{name}:{token}" for name, token in TOKENS.items())
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "aivp", "serve", "--http", "--port", str(port)],
                                env=_env(sandbox, project, AIVP_HTTP_TOKENS=tokens), stdout=subprocess.PIPE, stderr=err)
    try:
        base = f"http://127.0.0.1:{port}"
        with anyio.fail_after(60):
            while True:
                try:
                    async with httpx2.AsyncClient() as h:
                        if (await h.get(f"{base}/healthz")).status_code == 200:
                            break
                except httpx2.HTTPError:
                    await anyio.sleep(0.1)
        seen: list[float] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            seen.append(p)

        async with http_client(f"{base}/mcp", TOKENS["alice"]) as c:
            r = await c.call_tool("generate_image", {"prompt": "served by the real process",
                                                     "output": "image/frames/shot-01-ff.png"}, progress_callback=on_progress)
            assert not r.is_error, r.content[0].text
            link = r.structured_content["files"][0]["download_url"]
        async with http_client(f"{base}/mcp", TOKENS["bob"], mode="legacy") as c:
            listed = (await c.call_tool("queue_status", {})).structured_content["recent"]
        assert seen and listed[0]["started_by"] == "alice" and sandbox.submission_count() == 1
        async with httpx2.AsyncClient() as h:
            got = await h.get(link)
            assert got.status_code == 200 and got.content == (project / "image/frames/shot-01-ff.png").read_bytes()
            assert (await h.post(f"{base}/mcp", json={})).status_code == 401
            assert (await h.get(f"{base}/review/")).status_code == 401  # the review page, behind the same auth
            ticket = (await h.get(f"{base}/review/link", headers={"Authorization": f"Bearer {TOKENS['bob']}"})).json()
            opened = await h.get(ticket["url"], follow_redirects=True)
            assert opened.status_code == 200 and 'data-transport="http"' in opened.text
    finally:
        proc.send_signal(signal.SIGTERM)  # what a service manager sends: uvicorn shuts down, then exits by the signal
        try:
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.stdout.close()
    text = log.read_text()
    assert f"http://127.0.0.1:{port}/mcp" in text and "bearer tokens for alice, bob" in text
    assert f"review page is at http://127.0.0.1:{port}/review/" in text and "ticket=" not in text
    assert "Application shutdown complete" in text
    assert out == b""  # over HTTP stdout stays empty; logs go to stderr
    for secret in (KEY_ID, KEY_SECRET, *TOKENS.values()):
        assert secret not in text and secret not in all_text(project)


async def test_serve_http_with_oauth(project: Path, sandbox: Any, issuer: Any, tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = _env(sandbox, project, AIVP_OAUTH_ISSUER=issuer.url, AIVP_PUBLIC_URL=url)
    with (tmp_path / "serve.log").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "aivp", "serve", "--http", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        async with httpx2.AsyncClient() as h:
            with anyio.fail_after(60):
                while True:
                    try:
                        meta = await h.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp")
                        break
                    except httpx2.HTTPError:
                        await anyio.sleep(0.1)
        assert meta.json()["resource"] == url
        async with http_client(url, issuer.token(url, sub="dana")) as c:
            assert (await c.call_tool("queue_status", {})).structured_content["recent"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "OAuth tokens from" in (tmp_path / "serve.log").read_text()
