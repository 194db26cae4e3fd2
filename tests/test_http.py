"""aivp over streamable HTTP with static bearer tokens: real uvicorn on 127.0.0.1, the SDK's HTTP client, the sandbox."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import ResourceLink

from aivp.errors import ConfigError
from aivp.http.app import check, create_app, http_settings
from aivp.http.links import file_path, signed_url

from .conftest import KEY_ID, KEY_SECRET, TOKENS, all_text, http_client, http_server, make_settings, partials, png

pytestmark = pytest.mark.anyio
ALICE, BOB = TOKENS["alice"], TOKENS["bob"]


def _initialize() -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}


async def test_healthz_needs_no_auth_and_no_token_gets_401(project: Path, sandbox: Any) -> None:
    async with http_server(make_settings(project, sandbox), tokens=TOKENS) as url:
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient() as h:
            health = await h.get(f"{base}/healthz", headers={"Host": "lb.internal:9000"})  # no Host check either
            assert (health.status_code, health.text) == (200, "ok") and "server" not in health.headers
            for headers in ({}, {"Authorization": "Bearer not-a-token-of-anyone"}, {"Authorization": f"Basic {ALICE}"}):
                r = await h.post(url, json=_initialize(), headers=headers)
                assert r.status_code == 401, headers
                assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
                assert "resource_metadata" not in r.headers["www-authenticate"]  # static tokens: no OAuth metadata
            assert (await h.get(f"{base}/.well-known/oauth-protected-resource/mcp")).status_code == 404
            assert (await h.get(f"{base}/files/image/x.png")).status_code == 401


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_token_lists_tools_and_generates_an_image_with_progress(project: Path, sandbox: Any, mode: str) -> None:
    seen: list[str | None] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with http_server(make_settings(project, sandbox), tokens=TOKENS) as url, \
            http_client(url, ALICE, mode=mode) as c:
        assert c.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"generate_image", "queue_status", "cancel_job"} <= names
        before = sandbox.submission_count()
        r = await c.call_tool("generate_image", {"prompt": "a lighthouse in a storm", "output": "image/frames/shot-01-ff.png"},
                              progress_callback=on_progress)
        assert not r.is_error, r.content[0].text
        job = r.structured_content
        assert job["status"] == "completed" and job["started_by"] == "alice"
        assert sandbox.submission_count() - before == 1
        assert any("running" in (m or "") for m in seen) and any("queued" in (m or "") for m in seen)
        file = job["files"][0]
        link = next(x for x in r.content if isinstance(x, ResourceLink))
        assert link.mime_type == "image/png" and str(link.uri) == file["uri"] and file["download_url"] in link.description
        body = (await c.read_resource(file["uri"])).contents[0]
        assert body.mime_type == "image/png"
        assert base64.b64decode(body.blob) == (project / "image/frames/shot-01-ff.png").read_bytes()
        async with httpx2.AsyncClient() as h:  # the download link: no bearer needed, that file only, for an hour
            got = await h.get(file["download_url"])
            assert got.status_code == 200 and got.content == (project / file["path"]).read_bytes()
            assert got.headers["content-type"] == "image/png" and got.headers["x-content-type-options"] == "nosniff"
    row = json.loads((project / "image/log/shot-01-ff.json").read_text())
    assert row["started_by"] == "alice"


async def test_downloads_take_a_token_or_a_signed_link_and_serve_ranges(project: Path, sandbox: Any) -> None:
    clip = project / "video/clips/shot-01.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(bytes(range(256)) * 40)
    png(project / "image/frames/a b.png")
    (project / ".env").write_text("FAL_KEY=secret\n")
    (project / "page.html").write_text("<script>alert(1)</script>")
    async with http_server(make_settings(project, sandbox), tokens=TOKENS) as url:
        base = url.removesuffix("/mcp")
        auth = {"Authorization": f"Bearer {BOB}"}
        async with httpx2.AsyncClient() as h:
            r = await h.get(f"{base}/files/video/clips/shot-01.mp4", headers={**auth, "Range": "bytes=100-199"})
            assert r.status_code == 206 and r.content == clip.read_bytes()[100:200]
            assert r.headers["content-range"] == f"bytes 100-199/{clip.stat().st_size}"
            assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
            tail = await h.get(f"{base}/files/video/clips/shot-01.mp4", headers={**auth, "Range": "bytes=-10"})
            assert tail.status_code == 206 and tail.content == clip.read_bytes()[-10:]
            past = await h.get(f"{base}/files/video/clips/shot-01.mp4", headers={**auth, "Range": "bytes=999999-"})
            assert past.status_code == 416
            assert (await h.get(f"{base}/files/image/frames/a%20b.png", headers=auth)).status_code == 200
            for bad in (".env", ".aivp/ledger.sqlite3", "../outside.txt", "image/frames/missing.png"):
                r = await h.get(f"{base}/files/{bad}", headers=auth)
                assert r.status_code == 404 and "secret" not in r.text and str(project) not in r.text, bad
            page = await h.get(f"{base}/files/page.html", headers=auth)
            assert page.headers["content-disposition"].startswith("attachment") and "sandbox" in page.headers[
                "content-security-policy"]
            forged = await h.get(f"{base}/files/video/clips/shot-01.mp4?exp=9999999999&sig=forged")
            assert forged.status_code == 401


async def test_signed_links_are_checked_for_path_and_expiry(project: Path, sandbox: Any) -> None:
    png(project / "image/frames/shot-02-ff.png")
    png(project / "image/frames/shot-03-ff.png")
    settings = make_settings(project, sandbox)
    async with http_server(settings, tokens=TOKENS) as url, http_client(url, ALICE) as c:
        r = await c.call_tool("generate_image", {"prompt": "x", "output": "image/frames/shot-04-ff.png"})
        link = r.structured_content["files"][0]["download_url"]
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient() as h:
            assert (await h.get(link)).status_code == 200
            assert (await h.head(link)).status_code == 200
            moved = link.replace("shot-04-ff.png", "shot-02-ff.png")  # another file with this signature
            assert (await h.get(moved)).status_code == 401
            assert (await h.post(link)).status_code in (401, 405)
            assert base in link and "exp=" in link
            expired = link.split("?")[0] + "?exp=1&" + link.split("&")[-1]
            assert (await h.get(expired)).status_code == 401


def test_signed_url_round_trip() -> None:
    from aivp.http.links import valid_signature

    key = b"k" * 32
    url = signed_url("http://h:1", key, file_path("image/a b.png"), ttl_s=60, now=1000)
    assert url.startswith("http://h:1/files/image/a%20b.png?exp=1060&sig=")
    sig = url.rsplit("sig=", 1)[1]
    assert valid_signature(key, "/files/image/a b.png", "1060", sig, now=1000)
    assert not valid_signature(key, "/files/image/a b.png", "1060", sig, now=1061)
    assert not valid_signature(key, "/files/image/c.png", "1060", sig, now=1000)
    assert not valid_signature(b"x" * 32, "/files/image/a b.png", "1060", sig, now=1000)


async def test_foreign_origin_and_host_are_refused(project: Path, sandbox: Any) -> None:
    async with http_server(make_settings(project, sandbox), tokens=TOKENS) as url:
        auth = {"Authorization": f"Bearer {ALICE}", "Accept": "application/json, text/event-stream"}
        async with httpx2.AsyncClient() as h:
            evil = await h.post(url, json=_initialize(), headers={**auth, "Origin": "https://evil.example"})
            assert evil.status_code == 403
            unauthenticated = await h.post(url, json=_initialize(), headers={"Origin": "https://evil.example"})
            assert unauthenticated.status_code == 403  # refused before credentials are looked at
            rebound = await h.post(url, json=_initialize(), headers={**auth, "Host": "attacker.example"})
            assert rebound.status_code == 421
            assert (await h.get(url.replace("/mcp", "/files/x.png"), headers={"Host": "attacker.example"})).status_code == 421
            local = await h.post(url, json=_initialize(), headers={**auth, "Origin": url.removesuffix("/mcp")})
            assert local.status_code == 200


async def test_allowed_hosts_and_origins_widen_the_lists(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox, env={"AIVP_ALLOWED_HOSTS": "aivp.example.com",
                                                    "AIVP_ALLOWED_ORIGINS": "https://app.example.com"})
    async with http_server(settings, tokens=TOKENS) as url:
        auth = {"Authorization": f"Bearer {ALICE}", "Accept": "application/json, text/event-stream"}
        async with httpx2.AsyncClient() as h:
            for host in ("aivp.example.com", "aivp.example.com:443"):
                r = await h.post(url, json=_initialize(), headers={**auth, "Host": host, "Origin": "https://app.example.com"})
                assert r.status_code == 200, host
            assert (await h.post(url, json=_initialize(), headers={**auth, "Host": "other.example.com"})).status_code == 421


async def test_bodies_are_bounded(project: Path, sandbox: Any) -> None:
    async with http_server(make_settings(project, sandbox), tokens=TOKENS) as url:
        big = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "generate_image", "arguments": {"prompt": "x" * (5 * 1024 * 1024)}}}
        async with httpx2.AsyncClient() as h:
            r = await h.post(url, json=big, headers={"Authorization": f"Bearer {ALICE}"})
            assert r.status_code == 413
            assert sandbox.submission_count() == 0


def test_binding_beyond_loopback_without_auth_refuses(project: Path) -> None:
    settings = make_settings(project)
    for host in ("0.0.0.0", "::", "192.168.1.20"):
        with pytest.raises(ConfigError) as refused:
            http_settings(settings, host, 8000)
        assert "AIVP_HTTP_TOKENS" in str(refused.value) and "AIVP_OAUTH_ISSUER" in str(refused.value)
    for host in ("127.0.0.1", "localhost", "::1"):
        check(settings, host)
    from dataclasses import replace

    from aivp.settings import Secret

    check(replace(settings, http_tokens={"alice": Secret(ALICE)}), "0.0.0.0")
    with pytest.raises(ConfigError):
        create_app(None, settings, host="0.0.0.0")  # type: ignore[arg-type]


async def test_two_clients_share_one_job_and_see_who_started_it(project: Path, sandbox: Any) -> None:
    args = {"prompt": "two people ask for the same frame", "output": "image/frames/shot-05-ff.png", "wait_s": 0}
    sandbox.stick_queue(True)
    async with http_server(make_settings(project, sandbox), tokens=TOKENS) as url, \
            http_client(url, ALICE) as a, http_client(url, BOB, mode="legacy") as b:
        first = (await a.call_tool("generate_image", args)).structured_content
        second = (await b.call_tool("generate_image", args)).structured_content
        assert first["job_id"] == second["job_id"] and not first["done"]
        assert second["started_by"] == "alice" and sandbox.submission_count() == 1
        listed = (await b.call_tool("queue_status", {})).structured_content["recent"]
        assert [(j["job_id"], j["started_by"]) for j in listed] == [(first["job_id"], "alice")]
        assert (await b.call_tool("queue_status", {"started_by": "me"})).structured_content["recent"] == []
        assert len((await b.call_tool("queue_status", {"started_by": "alice"})).structured_content["recent"]) == 1
        sandbox.stick_queue(False)
        done_a, done_b = (await a.call_tool("queue_status", {"job_id": first["job_id"], "wait_s": 30}),
                          await b.call_tool("queue_status", {"job_id": first["job_id"], "wait_s": 30}))
        assert done_a.structured_content["job"]["status"] == done_b.structured_content["job"]["status"] == "completed"
    assert sandbox.submission_count() == 1


async def test_a_long_job_returns_a_handle_and_another_client_collects_it(project: Path, sandbox: Any) -> None:
    """A job longer than a host lets one call run (300 s), simulated with a stuck queue and a short wait_s."""
    sandbox.stick_queue(True)
    async with http_server(make_settings(project, sandbox), tokens=TOKENS) as url:
        async with http_client(url, ALICE) as a:
            handle = await a.call_tool("generate_video", {"prompt": "waves", "duration": 5, "wait_s": 0.5,
                                                          "output": "video/clips/shot-01.mp4"})
        job = handle.structured_content
        assert not handle.is_error and not job["done"] and job["status"] in ("queued", "submitting", "pending")
        assert "queue_status" in job["next_step"]
        sandbox.stick_queue(False)
        async with http_client(url, BOB, mode="legacy") as b:
            got = await b.call_tool("queue_status", {"job_id": job["job_id"], "wait_s": 60})
        final = got.structured_content["job"]
        assert final["status"] == "completed" and final["files"][0]["path"] == "video/clips/shot-01.mp4"
        assert final["files"][0]["download_url"] and final["started_by"] == "alice"
    assert (project / "video/clips/shot-01.mp4").is_file() and sandbox.submission_count() == 1


async def test_cancel_tells_the_other_client_who_cancelled(project: Path, sandbox: Any) -> None:
    sandbox.stick_queue(True)
    async with http_server(make_settings(project, sandbox), tokens=TOKENS) as url, \
            http_client(url, ALICE) as a, http_client(url, BOB) as b:
        job = (await a.call_tool("generate_image", {"prompt": "to be cancelled", "wait_s": 0})).structured_content
        with anyio.fail_after(10):
            while (await a.call_tool("queue_status", {"job_id": job["job_id"]})).structured_content["job"]["status"] != "queued":
                await anyio.sleep(0.05)
        cancelled = await b.call_tool("cancel_job", {"job_id": job["job_id"]})
        assert "by bob" in cancelled.content[0].text
        seen = await a.call_tool("queue_status", {"job_id": job["job_id"]})
        assert seen.is_error and "bob" in seen.content[0].text


async def test_no_key_or_token_in_any_response_log_or_record(project: Path, sandbox: Any,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    sent: list[bytes] = []
    async with http_server(make_settings(project, sandbox), tokens=TOKENS, record=sent) as url:
        async with http_client(url, ALICE) as c:
            ok = await c.call_tool("generate_image", {"prompt": "a key must never show", "output": "image/frames/k.png"})
            await c.call_tool("generate_image", {"prompt": "x", "model": "no-such-model"})
            await c.call_tool("queue_status", {"job_id": ok.structured_content["job_id"]})
            await c.read_resource(ok.structured_content["files"][0]["uri"])
        async with http_client(url, BOB, mode="legacy") as c:
            await c.call_tool("queue_status", {})
        async with httpx2.AsyncClient() as h:
            await h.get(ok.structured_content["files"][0]["download_url"])
            await h.post(url, json=_initialize(), headers={"Authorization": "Bearer wrong-token-123456789"})
        with pytest.raises((MCPError, BaseExceptionGroup)):  # the client gives up on a 401
            async with http_client(url, "wrong-token-123456789") as c:
                await c.list_tools()
    wire = b"".join(sent).decode("utf-8", "replace")
    assert "generate_image" in wire or "a key must never show" in wire  # the recorder saw the traffic
    for secret in (KEY_ID, KEY_SECRET, ALICE, BOB):
        assert secret not in wire, "a secret reached an HTTP response"
        assert secret not in caplog.text, "a secret reached the log"
        assert secret not in all_text(project), "a secret reached a file or the ledger"


async def test_extra_routes_run_behind_the_same_auth(project: Path, sandbox: Any) -> None:
    """The hook the review UI uses: create_app(routes=...) serves them behind a token or a signed link."""
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def whoami(request: Request) -> PlainTextResponse:
        user = request.user
        return PlainTextResponse(user.access_token.subject if user.is_authenticated else "signed link")

    async with http_server(make_settings(project, sandbox), tokens=TOKENS,
                           routes=[Route("/review/whoami", whoami, methods=["GET", "POST"])]) as url:
        base = url.removesuffix("/mcp")
        async with http_client(url, ALICE) as c:  # a signed link to this route, made with the server's key
            r = await c.call_tool("generate_image", {"prompt": "for the link key", "output": "image/frames/l.png"})
        link = r.structured_content["files"][0]["download_url"]
        async with httpx2.AsyncClient() as h:
            assert (await h.get(f"{base}/review/whoami")).status_code == 401
            got = await h.get(f"{base}/review/whoami", headers={"Authorization": f"Bearer {BOB}"})
            assert (got.status_code, got.text) == (200, "bob")
            # a signed link names one path: the file's link does not open the review route
            query = link.split("?", 1)[1]
            assert (await h.get(f"{base}/review/whoami?{query}")).status_code == 401


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_cancelled_call_only_detaches(project: Path, sandbox: Any, mode: str) -> None:
    sandbox.stick_queue(True)
    async with http_server(make_settings(project, sandbox), tokens=TOKENS) as url, \
            http_client(url, ALICE, mode=mode) as c:
        with anyio.move_on_after(1.0):  # the client gives up on its call (what a host's timeout does)
            await c.call_tool("generate_image", {"prompt": "outlives its call", "wait_s": 60})
        recent = (await c.call_tool("queue_status", {})).structured_content["recent"]
        assert len(recent) == 1 and recent[0]["status"] in ("queued", "submitting", "pending")
        sandbox.stick_queue(False)
        done = await c.call_tool("queue_status", {"job_id": recent[0]["job_id"], "wait_s": 30})
        assert done.structured_content["job"]["status"] == "completed"
    assert sandbox.submission_count() == 1


async def test_inputs_bigger_than_a_request_go_in_by_put(project: Path, sandbox: Any) -> None:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (1200, 1200), "teal").save(buf, "BMP")  # ~4.3 MB: more than a 4 MiB MCP request carries
    data = buf.getvalue()
    assert len(data) > 4 * 1024 * 1024
    settings = make_settings(project, sandbox, max_upload_bytes=6 * 1024 * 1024)
    async with http_server(settings, tokens=TOKENS) as url:
        base = url.removesuffix("/mcp")
        auth = {"Authorization": f"Bearer {ALICE}"}
        async with httpx2.AsyncClient(timeout=30) as h:
            assert (await h.put(f"{base}/files/image/refs/big.bmp", content=data)).status_code == 401
            put = await h.put(f"{base}/files/image/refs/big.bmp", content=data, headers=auth)
            assert put.status_code == 201 and put.json()["path"] == "image/refs/big.bmp"
            assert put.json()["bytes"] == len(data) and (project / "image/refs/big.bmp").read_bytes() == data
            again = await h.put(f"{base}/files/image/refs/big.bmp", content=b"other", headers=auth)
            assert again.json()["path"] == "image/refs/big-2.bmp"  # never over an existing file
            assert (await h.put(f"{base}/files/.env", content=b"FAL_KEY=x", headers=auth)).status_code == 400
            assert (await h.put(f"{base}/files/../x.png", content=b"x", headers=auth)).status_code in (400, 404)
            big = await h.put(f"{base}/files/image/refs/huge.bin", content=b"0" * (7 * 1024 * 1024), headers=auth)
            assert big.status_code == 413 and not (project / "image/refs/huge.bin").exists()
        assert partials(project) == []
        async with http_client(url, ALICE) as c:
            r = await c.call_tool("edit_image", {"image": "image/refs/big.bmp", "prompt": "make it night"})
            assert not r.is_error, r.content[0].text
