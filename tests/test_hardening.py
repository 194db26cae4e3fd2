"""Hostile input (issue 9): containment of every read and delete, ids in provider URLs, unsaveable targets,
idempotent placing, media bombs and fake media, argument edges, and the stdio depth guard."""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from PIL import Image

from aivp.jobs import outputs
from aivp.jobspec import JobSpec
from aivp.ledger import JobRow
from aivp.project import Project
from aivp.providers.base import OutputFile
from aivp.providers.http import RetryPolicy

from .conftest import ok, refused

pytestmark = pytest.mark.anyio
UUID = "764cabcf-b745-4b3e-ae38-1200304cf45b"


def bomb_png(path: Path, side: int = 30_000) -> Path:
    """A PNG whose header says side x side pixels (a few hundred bytes on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def character(project: Path, slug: str, anchor: str) -> Path:
    path = project / "script" / "characters" / f"{slug}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# Character: {slug.title()}\n\n## Prompt Anchor Phrase\n\n> {anchor}\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- 1. containment of reads and deletes

async def test_a_candidate_delete_never_reaches_through_a_linked_log_folder(client: Client, project: Path,
                                                                            tmp_path: Path, sandbox: Any) -> None:
    await ok(client, "generate_candidates", {"shot": 4, "count": 2, "prompt": "A stairwell"})
    outside = tmp_path / "outside-log"
    outside.mkdir()
    victim = outside / "shot-04-ff-c2.json"
    victim.write_text("{}")
    log = project / "image" / "log"
    for f in log.iterdir():
        f.unlink()
    log.rmdir()
    log.symlink_to(outside, target_is_directory=True)
    text = await refused(client, "manage_candidates", {"shot": 4, "action": "delete", "candidate": "ff-c2.png"})
    assert "symbolic link" in text and "image/log" in text
    assert victim.is_file() and (project / "image/candidates/shot-04/ff-c2.png").is_file()


async def test_mentions_and_listings_do_not_read_through_links_out_of_the_project(
        client: Client, project: Path, tmp_path: Path, sandbox: Any) -> None:
    secret = character(tmp_path / "elsewhere", "mara", "SECRET-TEXT-FROM-OUTSIDE")
    (project / "script" / "characters").mkdir(parents=True)
    (project / "script" / "characters" / "mara.md").symlink_to(secret)
    character(project, "theo", "a lighthouse keeper in oilskins")
    text = await refused(client, "generate_image", {"prompt": "@mara at the window"})
    assert "@mara is not a character" in text and "SECRET" not in text
    listed = await ok(client, "list_assets", {})
    assert [a["name"] for a in listed["assets"]] == ["Theo"]
    linked_folder = tmp_path / "scenes-elsewhere"
    linked_folder.mkdir()
    (linked_folder / "harbor.md").write_text("# Scene: Harbor\n\n## Scene Prompt\n\n> OUTSIDE-SCENE\n")
    (project / "script" / "scenes").symlink_to(linked_folder, target_is_directory=True)
    listed = await ok(client, "list_assets", {})
    assert [a["name"] for a in listed["assets"]] == ["Theo"] and sandbox.submission_count() == 0


async def test_a_linked_out_aivp_toml_is_not_read(client: Client, project: Path, tmp_path: Path, sandbox: Any) -> None:
    outside = tmp_path / "other.toml"
    outside.write_text("budget_usd = 1000\n")
    (project / "aivp.toml").symlink_to(outside)
    text = await refused(client, "generate_image", {"prompt": "anything", "dry_run": True})
    assert "aivp.toml is a symbolic link" in text


# ---------------------------------------------------------------- 2. ids never steer a keyed request

async def test_request_and_endpoint_ids_are_checked_before_any_request(client: Client, sandbox: Any) -> None:
    before = len(sandbox.requests)
    text = await refused(client, "queue_status", {"model": "fal-ai/flux/dev", "request_id": "../../../_control/counts"})
    assert "not a fal request id" in text and "UUID" in text
    text = await refused(client, "queue_status", {"model": "fal-ai/../../_control", "request_id": UUID})
    assert "not a fal endpoint id" in text
    text = await refused(client, "queue_status", {"model": "replicate:black-forest-labs/flux-schnell",
                                                  "request_id": "../predictions"})
    assert "not a Replicate request id" in text
    assert len(sandbox.requests) == before  # nothing was sent anywhere


async def test_an_adopted_request_the_provider_refuses_is_failed_not_polled_forever(client: Client,
                                                                                     sandbox: Any) -> None:
    sandbox.fault("status", status=422, body={"detail": "Unprocessable request"}, times=None)
    sandbox.fault("stream", status=422, body={"detail": "Unprocessable request"}, times=None)
    r = await client.call_tool("queue_status", {"model": "fal-ai/flux/dev", "request_id": UUID, "wait_s": 10})
    assert r.is_error and "cannot be followed" in r.content[0].text and "HTTP 422" in r.content[0].text


# ---------------------------------------------------------------- 3. targets that could not be saved

async def test_unsaveable_targets_are_refused_before_the_submit(client: Client, project: Path, tmp_path: Path,
                                                                 sandbox: Any) -> None:
    long = "a" * 300 + ".png"
    text = await refused(client, "generate_image", {"prompt": "x", "output": f"image/styles/{long}"})
    assert "bytes long" in text and "at most 255" in text
    text = await refused(client, "generate_image", {"prompt": "x", "output": "image/styles/two\nlines.png"})
    assert "line" in text
    outside = tmp_path / "elsewhere-log"
    outside.mkdir()
    (project / "image").mkdir()
    (project / "image" / "log").symlink_to(outside, target_is_directory=True)
    text = await refused(client, "generate_image", {"prompt": "x", "output": "image/styles/ok.png"})
    assert "symbolic link" in text and "image/log" in text
    assert sandbox.submission_count() == 0 and list(outside.iterdir()) == []


# ---------------------------------------------------------------- 4. placing is idempotent

async def test_a_kill_between_placing_and_recording_does_not_duplicate_the_file(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    project = Project(root)
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), "teal").save(buf, "PNG")
    body = buf.getvalue()
    client = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, content=body, headers={"content-type": "image/png"})))
    spec = JobSpec(kind="image", mode="T2I", shape="images", model="m", targets=("image/styles/look.png",))
    row = JobRow(id="01JOB", idem_key="k", tool="generate_image", model_id="m", provider="fal", endpoint="e",
                 task="t2i", state="fetching", request={}, spec=spec, request_id="r", handle=None,
                 queue_position=None, logs=[], result={}, outputs=[], error=None, error_code=None, estimate_usd=0.1,
                 cost_usd=None, created_at="", submitted_at=None, started_at=None, finished_at=None, updated_at="")
    files = [OutputFile(url="https://cdn.example/out.png", kind="image")]

    def crash(done: list[dict[str, Any]]) -> None:  # the process dies right after the file was placed
        raise KeyboardInterrupt

    fetcher = outputs.Fetcher(project, client, RetryPolicy(attempts=2), progress=lambda m: None, save=crash)
    with pytest.raises(KeyboardInterrupt):
        await outputs.fetch_outputs(fetcher, row, files)
    assert (root / "image/styles/look.png").is_file()
    saved: list[list[dict[str, Any]]] = []
    again = outputs.Fetcher(project, client, RetryPolicy(attempts=2), progress=lambda m: None, save=saved.append)
    got = await outputs.fetch_outputs(again, row, files)
    await client.aclose()
    assert [o["path"] for o in got.outputs] == ["image/styles/look.png"]
    assert sorted(p.name for p in (root / "image/styles").iterdir()) == ["look.png"] and saved


# ---------------------------------------------------------------- 5. media bombs and fake media

async def test_a_decompression_bomb_is_refused_with_nothing_written(client: Client, project: Path, sandbox: Any) -> None:
    bomb_png(project / "drawings" / "bomb.png")
    text = await refused(client, "manage_candidates", {"shot": 2, "action": "upload", "file": "drawings/bomb.png"})
    assert "more pixels than aivp will decode" in text
    assert not (project / "image").exists()
    text = await refused(client, "generate_video", {"prompt": "x", "image": "drawings/bomb.png"})
    assert "more pixels than aivp will decode" in text and sandbox.submission_count() == 0


async def test_one_bad_file_does_not_break_a_listing(client: Client, project: Path, sandbox: Any) -> None:
    await ok(client, "generate_candidates", {"shot": 3, "count": 1, "prompt": "A harbour"})
    bomb_png(project / "image" / "candidates" / "shot-03" / "ff-u1.png")
    r = await client.call_tool("list_candidates", {"shot": 3})
    assert not r.is_error
    assert [c["file"].rsplit("/", 1)[-1] for c in r.structured_content["candidates"]] == ["ff-c1.png", "ff-u1.png"]
    assert "ff-u1.png cannot be shown" in r.content[0].text


async def test_data_uris_are_checked_by_their_bytes_and_large_ones_uploaded(client: Client, sandbox: Any) -> None:
    fake = "data:image/png;base64," + base64.b64encode(b"just some text, not a picture").decode()
    text = await refused(client, "generate_video", {"prompt": "x", "image": fake})
    assert "does not hold a recognised image" in text and sandbox.submission_count() == 0
    buf = io.BytesIO()
    Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3)).save(buf, "PNG")  # noise: ~1.5 MB
    assert len(buf.getvalue()) > 1024 * 1024
    big = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    job = await ok(client, "generate_video", {"prompt": "a slow push-in", "image": big, "model": "seedance-1.5-pro"})
    assert job["status"] == "completed"
    payload = sandbox.submissions[-1].payload
    assert str(payload["image_url"]).startswith("http") and len(json.dumps(payload)) < 10_000


# ---------------------------------------------------------------- 6. argument edges

async def test_argument_edges_get_one_plain_sentence(client: Client, project: Path, sandbox: Any) -> None:
    text = await refused(client, "list_candidates", {"shot": -1})
    assert "positive" in text
    text = await refused(client, "generate_image", {"prompt": "x", "seed": 2**80, "model": "flux-dev"})
    assert "seed" in text and "4294967295" in text
    text = await refused(client, "generate_video", {"prompt": "x", "wait_s": 9000})
    assert "wait_s=9000 is out of range" in text and "pydantic" not in text and "validation error" not in text
    text = await refused(client, "generate_video", {"prompt": "x", "image": "b" * 300 + ".png"})
    assert "bytes long" in text and "internal error" not in text
    text = await refused(client, "generate_video", {"prompt": "x", "image": "..\\..\\x.png"})
    assert "backslashes" in text and "hidden" not in text
    assert sandbox.submission_count() == 0


async def test_every_tool_refuses_an_argument_it_does_not_take(client: Client) -> None:
    tools = (await client.list_tools()).tools
    for tool in tools:
        assert tool.input_schema.get("additionalProperties") is False, tool.name
        r = await client.call_tool(tool.name, {"bogus_argument": 1})
        assert r.is_error and "does not take 'bogus_argument'" in r.content[0].text, tool.name


# ---------------------------------------------------------------- 8. the stdio depth guard

@pytest.mark.slow
def test_a_deeply_nested_request_gets_an_error_over_stdio(project: Path) -> None:
    env = {**os.environ, "AIVP_PROJECT_DIR": str(project)}
    proc = subprocess.Popen([sys.executable, "-m", "aivp", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        def send(line: str) -> None:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

        send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}))
        assert json.loads(proc.stdout.readline())["id"] == 1
        send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        send('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_assets","arguments":{"a":'
             + "[" * 1000 + "]" * 1000 + "}}}")
        answer = json.loads(proc.stdout.readline())
        assert answer["id"] == 7 and answer["error"]["code"] == -32601 and "deeper than" in answer["error"]["data"]
        send(json.dumps({"jsonrpc": "2.0", "id": 8, "method": "ping"}))
        assert json.loads(proc.stdout.readline()) == {"jsonrpc": "2.0", "id": 8, "result": {}}
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdin.close()
        proc.stdout.close()

