"""The upload cache (issue 11 item 2): keyed by provider and base URLs, bypassed with fresh=true, and a dead
cached link recovered automatically with one more upload and no second charge."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from aivp.app import build_server
from aivp.sandbox import Sandbox

from .conftest import make_settings, ok, png

pytestmark = pytest.mark.anyio


def uploads(sandbox: Any) -> int:
    return sum(1 for r in sandbox.requests if r.route in ("upload", "multipart_init", "signed_put"))


async def test_a_link_made_on_another_host_is_not_reused(project: Path, sandbox: Any) -> None:
    png(project / "image/frames/shot-01-ff.png")
    other = Sandbox(port=0, queue_s=0.05, image_s=0.1, video_s=0.3)
    other.start()
    try:
        async with Client(build_server(make_settings(project, other))) as c:  # e.g. `aivp demo` in this project
            await ok(c, "generate_video", {"prompt": "on the demo sandbox", "image": "image/frames/shot-01-ff.png"})
    finally:
        other.stop()
    async with Client(build_server(make_settings(project, sandbox))) as c:
        job = await ok(c, "generate_video", {"prompt": "for real", "image": "image/frames/shot-01-ff.png"})
    assert job["status"] == "completed" and uploads(sandbox) == 1
    sent = sandbox.submissions[-1].payload["image_url"]
    assert sent.startswith(sandbox.url)  # this host's own upload, not the stopped sandbox's link


async def test_a_dead_cached_link_is_uploaded_again_and_resubmitted_once(project: Path, sandbox: Any) -> None:
    png(project / "image/frames/shot-02-ff.png")
    async with Client(build_server(make_settings(project, sandbox))) as c:
        await ok(c, "generate_video", {"prompt": "first take", "image": "image/frames/shot-02-ff.png"})
        with sqlite3.connect(project / ".aivp" / "ledger.sqlite3") as db:  # the provider forgets the file
            db.execute("UPDATE uploads SET url = url || '-gone'")
        before_uploads, before_submits = uploads(sandbox), sandbox.submission_count()
        job = await ok(c, "generate_video", {"prompt": "second take", "image": "image/frames/shot-02-ff.png"})
        assert job["status"] == "completed" and (project / job["files"][0]["path"]).is_file()
        assert uploads(sandbox) == before_uploads + 1 and sandbox.submission_count() == before_submits + 2
        assert any("not charged" in w for w in job["warnings"])
        assert job["would_cost_usd"] == pytest.approx(job["estimate_usd"])  # paid once (were it not a sandbox)
        third = await ok(c, "generate_video", {"prompt": "third take", "image": "image/frames/shot-02-ff.png"})
        assert third["status"] == "completed" and uploads(sandbox) == before_uploads + 1  # the new link is reused


async def test_fresh_bypasses_the_upload_cache(client: Client, project: Path, sandbox: Any) -> None:
    png(project / "image/styles/mood.png")
    first = await ok(client, "upload_file", {"path": "image/styles/mood.png"})
    again = await ok(client, "upload_file", {"path": "image/styles/mood.png", "fresh": True})
    assert again["cached"] is False and again["url"] != first["url"] and uploads(sandbox) == 2
    await ok(client, "generate_video", {"prompt": "a", "image": "image/styles/mood.png"})
    assert uploads(sandbox) == 2  # the cache serves a normal call
    await ok(client, "generate_video", {"prompt": "a", "image": "image/styles/mood.png", "fresh": True})
    assert uploads(sandbox) == 3  # fresh=true pays again and uploads again
