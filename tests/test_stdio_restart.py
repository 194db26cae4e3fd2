"""The real `aivp serve` over stdio, and a server killed mid-job that finishes it after a restart.

The kill is a SIGKILL of the subprocess (no shutdown code runs); the sandbox counts submissions, so
"exactly one submit" is checked against what the provider actually received.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from aivp.app import build_server

from .conftest import KEY, KEY_ID, KEY_SECRET, all_text, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def server_env(project: Path, sandbox: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIVP_", "FAL_"))}
    env.update(sandbox.env())
    env.update({"FAL_KEY": KEY, "AIVP_PROJECT_DIR": str(project), "AIVP_LOG_LEVEL": "DEBUG",
                "AIVP_HOME": str(project.parent / "home"), "PYTHONUNBUFFERED": "1",
                "AIVP_CONFIRM_ABOVE_USD": "-1"})  # spend consent is tested in test_consent.py
    return env


def params(project: Path, sandbox: Any) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "aivp", "serve", "--project", str(project)],
                                 env=server_env(project, sandbox), cwd=str(project))


async def test_real_server_over_stdio(project: Path, sandbox: Any, tmp_path: Path) -> None:
    seen: list[str | None] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    errlog = (tmp_path / "stderr.txt").open("w")
    try:
        async with Client(stdio_client(params(project, sandbox), errlog=errlog)) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert {"generate_image", "generate_video", "queue_status"} <= names
            r = await c.call_tool("generate_image", {"prompt": "over the wire", "output": "image/styles/wire.png"},
                                  progress_callback=on_progress)
            assert not r.is_error, r.content[0].text
            assert r.structured_content["files"][0]["path"] == "image/styles/wire.png"
            bad = await c.call_tool("generate_image", {"prompt": "x", "model": "no-such-model"})
            assert bad.is_error and "Unknown model" in bad.content[0].text
            await anyio.sleep(0.2)  # over a real transport progress can trail the result
    finally:
        errlog.close()
    assert (project / "image/styles/wire.png").is_file() and seen
    stderr = (tmp_path / "stderr.txt").read_text()
    assert KEY_SECRET not in stderr and KEY_ID not in stderr
    assert sandbox.submission_count() == 1


def _rpc(proc: subprocess.Popen[str], msg: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(msg) + "\n")
    proc.stdin.flush()


def _read(proc: subprocess.Popen[str], want_id: int, deadline: float) -> dict[str, Any]:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("server exited")
        msg = json.loads(line)  # stdout must carry only protocol messages
        if msg.get("id") == want_id:
            return msg
    raise AssertionError("no answer in time")


@pytest.mark.slow
async def test_killed_mid_job_restart_finishes_with_one_submit(project: Path, sandbox: Any, tmp_path: Path) -> None:
    stderr = (tmp_path / "stderr-1.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "aivp", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=stderr, text=True, env=server_env(project, sandbox), cwd=str(project))
    try:
        deadline = time.monotonic() + 30
        _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
        _read(proc, 1, deadline)
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "generate_video", "arguments": {
            "prompt": "a long take [sandbox:slow=2.5]", "output": "video/clips/shot-07.mp4", "wait_s": 0.3}}})
        answer = _read(proc, 2, deadline)["result"]["structuredContent"]
        job_id = answer["job_id"]
        ledger = project / ".aivp" / "ledger.sqlite3"
        while True:  # kill only once the submit is on record (request id stored)
            with sqlite3.connect(ledger) as db:
                rid, state = db.execute("SELECT request_id, state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if rid:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state in ("queued", "running")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        stderr.close()
    assert not (project / "video/clips/shot-07.mp4").exists()

    errlog = (tmp_path / "stderr-2.txt").open("w")
    try:
        async with Client(stdio_client(params(project, sandbox), errlog=errlog)) as c:
            r = await c.call_tool("queue_status", {"job_id": job_id, "wait_s": 30})
            assert not r.is_error, r.content[0].text
            job = r.structured_content["job"]
    finally:
        errlog.close()
    assert job["status"] == "completed" and job["files"][0]["path"] == "video/clips/shot-07.mp4"
    assert (project / "video/clips/shot-07.mp4").is_file()
    assert sandbox.submission_count() == 1
    logs = (tmp_path / "stderr-1.txt").read_text() + (tmp_path / "stderr-2.txt").read_text()
    assert KEY_SECRET not in logs


async def test_graceful_restart_resumes_in_process(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox)
    async with Client(build_server(settings)) as c:
        first = (await c.call_tool("generate_video", {"prompt": "resume me [sandbox:slow=1.5]", "wait_s": 0.3})).structured_content
        with anyio.fail_after(10):
            while (await c.call_tool("queue_status", {"job_id": first["job_id"]})).structured_content["job"]["request_id"] is None:
                await anyio.sleep(0.05)
    async with Client(build_server(settings)) as c:
        r = await c.call_tool("queue_status", {"job_id": first["job_id"], "wait_s": 20})
        assert r.structured_content["job"]["status"] == "completed"
    assert sandbox.submission_count() == 1


async def test_key_never_in_ledger_records_results_or_logs(project: Path, sandbox: Any,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    settings = make_settings(project, sandbox)
    texts: list[str] = []
    async with Client(build_server(settings)) as c:
        from PIL import Image

        (project / "image").mkdir()
        Image.new("RGB", (64, 64)).save(project / "image/ref.png")
        for args in ({"prompt": "secret scan", "references": ["image/ref.png"]},
                     {"prompt": "[sandbox:unsafe] refused"}, {"prompt": "x", "model": "bogus"}):
            r = await c.call_tool("generate_image", args)
            texts.append(json.dumps([x.model_dump(mode="json") for x in r.content]))
            texts.append(json.dumps(r.structured_content))
        texts.append(json.dumps((await c.call_tool("queue_status", {})).structured_content))
    haystack = "\n".join(texts) + all_text(project) + caplog.text
    assert KEY_SECRET not in haystack and KEY_ID not in haystack
    # the key went to the queue and REST hosts only: never to the CDN, uploads or signed URLs
    for rec in sandbox.requests:
        auth = {k.lower(): v for k, v in rec.headers.items()}.get("authorization", "")
        if KEY_SECRET in auth:
            assert rec.route in ("submit", "status", "stream", "result", "cancel", "token", "initiate"), rec.route


@pytest.mark.slow
async def test_storyboard_cli_killed_midway_reruns_to_the_end_paying_once(project: Path, sandbox: Any,
                                                                          tmp_path: Path) -> None:
    import shutil

    from aivp.demo import SAMPLE

    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    sandbox.configure(image_s=0.5, video_s=1.5)
    env = server_env(project, sandbox)
    log = (tmp_path / "run-1.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "aivp", "run-storyboard", "--yes", "--project", str(project)],
                            stdout=log, stderr=log, env=env, cwd=str(project))
    ledger = project / ".aivp" / "ledger.sqlite3"
    try:
        deadline = time.monotonic() + 60
        while True:  # kill mid-run, between submits, with jobs still out at the provider
            if sandbox.submission_count() >= 8 and ledger.exists():
                with sqlite3.connect(ledger) as db:
                    busy = db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'submitting')").fetchone()[0]
                    running = db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]
                if busy == 0 and running > 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        log.close()
    assert not (project / "video/clips/shot-06.mp4").exists()
    second = subprocess.run([sys.executable, "-m", "aivp", "run-storyboard", "--yes", "--project", str(project)],
                            capture_output=True, text=True, env=env, cwd=str(project), timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Storyboard run" in second.stdout
    for n in range(1, 7):
        assert (project / f"video/clips/shot-{n:02d}.mp4").is_file()
    seen: dict[str, int] = {}
    for s in sandbox.submissions:
        key = repr(sorted((k, str(v)) for k, v in s.payload.items() if k in ("prompt", "image_url", "image_urls")))
        seen[key] = seen.get(key, 0) + 1
    assert max(seen.values()) == 1 and sandbox.submission_count() == 22
    assert KEY_SECRET not in second.stdout + second.stderr + (tmp_path / "run-1.txt").read_text()


@pytest.mark.slow
async def test_two_servers_on_one_project_never_take_each_others_live_jobs(project: Path, sandbox: Any) -> None:
    from PIL import Image

    (project / "image").mkdir()
    Image.new("RGB", (64, 64), "red").save(project / "image/key.png")
    sandbox.fault("upload", action="stall", delay=1.5)  # server A sits in 'pending' while it uploads
    settings = make_settings(project, sandbox)
    async with Client(build_server(settings)) as a:
        first = (await a.call_tool("generate_video", {"prompt": "two servers [sandbox:slow=1]", "image": "image/key.png",
                                                      "wait_s": 0.2})).structured_content
        async with Client(build_server(settings)) as b:  # B starts while A's job is pending: it must leave it alone
            r = await b.call_tool("queue_status", {"job_id": first["job_id"], "wait_s": 20})
            job = r.structured_content["job"]
            assert job["status"] == "completed", job
        done = (await a.call_tool("queue_status", {"job_id": first["job_id"]})).structured_content["job"]
        assert done["status"] == "completed"
    assert sandbox.submission_count() == 1
    clips = sorted(p.name for p in (project / "video").rglob("*.mp4"))
    assert len(clips) == 1, clips  # one download, not one per server
