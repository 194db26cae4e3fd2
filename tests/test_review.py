"""The review page's server side, without a browser: the MCP App resources and _meta, mark_clip in
video/plan.md, the byte-budgeted previews, and `aivp review`'s HTTP routes (token, cookie, containment,
range requests)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from aivp.app import build_server
from aivp.demo import SAMPLE
from aivp.review.routes import ClientBackend
from aivp.review.serve import ReviewServer
from aivp.settings import Settings
from aivp.tools.ui import MEDIA_DOMAINS, media_url

from .conftest import make_settings, ok, png, refused

APPS = [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})]


def plan_status(project: Path, file: str) -> str:
    for line in (project / "video/plan.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[2] == f"`{file}`":
            return cells[5]
    raise AssertionError(f"no plan row for {file}")


@pytest.mark.anyio
async def test_the_app_resources_and_tool_meta(settings: Settings) -> None:
    async with Client(build_server(settings), extensions=APPS) as client:
        assert EXTENSION_ID in (client.session.server_capabilities.extensions or {})
        tools = {t.name: t for t in (await client.list_tools()).tools}
        resources = {r.uri: r for r in (await client.list_resources()).resources}
        views = {"generate_candidates": "candidates", "list_candidates": "candidates", "run_storyboard": "board",
                 "generate_video": "clips"}
        for tool, view in views.items():
            uri = (tools[tool].meta or {})["ui"]["resourceUri"]
            assert uri == f"ui://aivp/{view}.html" and uri in resources
        assert not tools["manage_candidates"].meta and not tools["mark_clip"].annotations.read_only_hint
        for view in ("candidates", "clips", "board"):
            res = resources[f"ui://aivp/{view}.html"]
            assert res.mime_type == APP_MIME_TYPE
            assert res.meta == {"ui": {"csp": {"resourceDomains": list(MEDIA_DOMAINS)}, "prefersBorder": True}}
            html = (await client.read_resource(res.uri)).contents[0]
            assert html.mime_type == APP_MIME_TYPE and html.meta == res.meta
            text = html.text  # type: ignore[union-attr]
            assert f'data-view="{view}" data-transport="bridge"' in text
            # self-contained: nothing loaded from elsewhere, no loopback address to reach
            assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"(https?:)?//", text)
            assert "127.0.0.1" not in text and "localhost" not in text
            assert len(text.encode()) < 40_000


def test_only_provider_media_origins_pass() -> None:
    assert media_url("https://v3.fal.media/files/x/clip.mp4") and media_url("https://fal.media/files/a.png")
    assert media_url("https://pbxt.replicate.delivery/a/out.mp4")
    for bad in ("http://v3.fal.media/x.mp4", "https://evilfal.media/x.mp4", "http://127.0.0.1:8000/fal/cdn/x.mp4",
                "https://fal.media.evil.com/x.mp4", None, 3):
        assert media_url(bad) is None, bad


@pytest.mark.anyio
async def test_mark_clip_writes_video_plan_and_the_board_shows_it(project: Path, sandbox: Any) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    async with Client(build_server(make_settings(project, sandbox))) as client:
        text = await refused(client, "mark_clip", {"shot": 1, "status": "failed", "note": "x"})
        assert "no clip yet" in text
        await ok(client, "generate_video", {"prompt": "She climbs", "output": "video/clips/shot-01.mp4"})
        row_before = plan_status(project, "video/clips/shot-01.mp4")
        assert row_before == "done"
        text = await refused(client, "mark_clip", {"shot": 1, "status": "failed"})
        assert "Say what is wrong" in text
        marked = await ok(client, "mark_clip", {"shot": "1.1", "status": "failed",
                                                "note": "the hand | melts\ninto the rail"})
        assert marked["clip"] == "video/clips/shot-01.mp4" and "redo=['1']" in marked["notes"][0]
        assert plan_status(project, "video/clips/shot-01.mp4") == "failed (review): the hand / melts into the rail"
        status = await ok(client, "run_storyboard", {"mode": "status"})
        shot1 = status["shots"][0]
        assert shot1["status"] == "failed" and shot1["clip_status"] == "failed"
        assert "the hand / melts into the rail" in shot1["error"]
        # a run that does not remake the clip keeps the mark (it rewrites the plan's other rows)
        await ok(client, "run_storyboard", {"mode": "run", "shots": ["1"], "stages": ["clips"], "wait_s": 30})
        assert plan_status(project, "video/clips/shot-01.mp4").startswith("failed (review)")
        shots = json.loads((await client.read_resource("aivp://review/shots")).contents[0].text)  # type: ignore[union-attr]
        clip = shots["shots"][0]["clip"]
        assert clip["failed"] and clip["note"] == "the hand / melts into the rail" and clip["duration_s"] > 0
        assert clip["url"] is None  # the sandbox's http URL is not a provider origin the page may load
        assert clip["poster"] == "video/posters/shot-01.jpg" and clip["model"]
        await ok(client, "mark_clip", {"shot": 1, "status": "ok"})
        assert plan_status(project, "video/clips/shot-01.mp4") == "done"


@pytest.mark.anyio
async def test_previews_fit_their_budget_and_stay_inside(client: Client, project: Path) -> None:
    from PIL import Image

    noise = Image.effect_noise((2400, 1400), 90).convert("RGB")
    (project / "image/frames").mkdir(parents=True)
    noise.save(project / "image/frames/shot-01-ff.png")
    for uri, budget in (("aivp://thumb/image/frames/shot-01-ff.png", 48_000),
                        ("aivp://preview/image/frames/shot-01-ff.png", 240_000)):
        c = (await client.read_resource(uri)).contents[0]
        data = base64.b64decode(c.blob)  # type: ignore[union-attr]
        assert c.mime_type == "image/jpeg" and data[:2] == b"\xff\xd8" and len(data) <= budget
    png(project.parent / "outside.png")
    (project / ".env").write_text("FAL_KEY=secret\n")
    for bad in ("../outside.png", ".env", ".aivp/ledger.sqlite3"):
        with pytest.raises(Exception):
            await client.read_resource(f"aivp://thumb/{bad}")


@pytest.mark.anyio
async def test_results_mention_the_review_view(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox)
    args = {"shot": 2, "count": 1, "prompt": "A lamp"}
    async with Client(build_server(settings)) as plain:
        r = await plain.call_tool("generate_candidates", args)
        assert f"aivp review --project {project}" in r.content[0].text  # type: ignore[union-attr]
    async with Client(build_server(settings), extensions=APPS) as apps:
        r = await apps.call_tool("list_candidates", {"shot": 2})
        assert "review view beside this result" in r.content[0].text  # type: ignore[union-attr]


# ---------------------------------------------------------------- the HTTP routes of `aivp review`

@pytest.fixture
def review(project: Path, sandbox: Any) -> Iterator[ReviewServer]:
    png(project / "image/frames/shot-01-ff.png")
    settings = make_settings(project, sandbox)

    @asynccontextmanager
    async def backend() -> AsyncIterator[ClientBackend]:
        async with Client(build_server(settings)) as client:
            yield ClientBackend(client)

    server = ReviewServer(project, backend).start()
    try:
        yield server
    finally:
        server.stop()


def test_one_time_token_then_cookie(review: ReviewServer) -> None:
    base = f"http://127.0.0.1:{review.port}"
    with httpx.Client() as anon:
        assert anon.get(f"{base}/").status_code == 401
        assert anon.get(f"{base}/?token=wrong").status_code == 401
    with httpx.Client() as browser:
        r = browser.get(review.link)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"aivp_review_{review.port}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        page = browser.get(f"{base}/")
        assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
        assert 'data-transport="http"' in page.text
        with httpx.Client() as other:  # the link works once
            assert other.get(review.link).status_code == 401
        assert browser.get(f"{base}/", headers={"host": f"evil.example:{review.port}"}).status_code == 421
        call = browser.post(f"{base}/api/call", json={"name": "list_candidates", "arguments": {"shot": 1}})
        assert call.status_code == 200 and call.json()["structuredContent"]["shot"] == 1
        assert browser.post(f"{base}/api/call", json={"name": "list_candidates", "arguments": {"shot": 1}},
                            headers={"origin": "https://evil.example"}).status_code == 403
        denied = browser.post(f"{base}/api/call", json={"name": "edit_image", "arguments": {}})
        assert denied.status_code == 403 and "does not call 'edit_image'" in denied.json()["error"]
        assert browser.post(f"{base}/api/read", json={"uri": "aivp://skill"}).status_code == 403


def test_files_are_contained_and_ranged(review: ReviewServer, project: Path) -> None:
    base = f"http://127.0.0.1:{review.port}"
    (project / ".env").write_text("FAL_KEY=secret\n")
    png(project.parent / "outside.png")
    with httpx.Client() as browser:
        browser.get(review.link)
        whole = browser.get(f"{base}/files/image/frames/shot-01-ff.png")
        assert whole.status_code == 200 and whole.headers["content-type"] == "image/png"
        assert whole.headers["accept-ranges"] == "bytes"
        part = browser.get(f"{base}/files/image/frames/shot-01-ff.png", headers={"range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == whole.content[:100]
        assert part.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"
        for bad in (".env", ".aivp/ledger.sqlite3", "..%2Foutside.png", "%2Fetc%2Fpasswd"):
            r = browser.get(f"{base}/files/{bad}")
            assert r.status_code == 404 and b"secret" not in r.content, bad


@pytest.mark.slow
def test_the_command_prints_one_line(project: Path, sandbox: Any) -> None:
    env = {**sandbox.env(), "FAL_KEY": "sandbox", "PATH": "/usr/bin:/bin", "HOME": str(project.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "aivp", "review", "--project", str(project), "--no-open"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.fullmatch(r"Review: http://127\.0\.0\.1:(\d+)/\?token=([\w-]{20,})\n", line)
        assert m, line
        with httpx.Client() as browser:
            assert browser.get(line.split()[1]).status_code == 303
            assert f"aivp_review_{m[1]}" in browser.cookies
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert out == "", out  # nothing else on stdout
