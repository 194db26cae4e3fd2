"""Lost submits are settled, not left unknown (issue 9 item 7): the job is looked up at the provider (fal's
request history, Replicate's list of predictions) and adopted (one match), released (none), or explained
(several, or no way to look). Replicate's create is no longer held open while its id is unknown, so a
server killed during a slow create recovers the job; so does fal's, killed while the submit's answer is late."""

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
import httpx
import pytest
from mcp import Client

from aivp.app import build_server
from aivp.settings import Settings

from .conftest import KEY, make_settings, ok

pytestmark = pytest.mark.anyio
TOKEN = "r8_test-token-0123456789"
MODEL = "flux-schnell"


def settings_for(project: Path, sandbox: Any, **overrides: Any) -> Settings:
    return make_settings(project, sandbox, keys={"fal": None, "replicate": TOKEN}, **overrides)


def creates(sandbox: Any, route: str = "replicate_create") -> int:
    return sum(1 for r in sandbox.requests if r.route == route)


async def lost(c: Client, prompt: str, sandbox: Any, *, processed: bool = True, fresh: bool = False,
               route: str = "replicate_create") -> str:
    """Make a create whose answer never arrives (after the sandbox took it, or before); return the job id."""
    sandbox.fault(route, action="drop", after=processed)
    r = await c.call_tool("generate_image", {"prompt": prompt, "model": MODEL, "fresh": fresh})
    assert r.is_error and "unknown" in r.content[0].text
    listing = (await c.call_tool("queue_status", {})).structured_content
    assert listing is not None
    return str(next(j["job_id"] for j in listing["recent"] if j["status"] == "unknown"))


async def test_one_match_is_adopted_and_lands_at_the_requested_output(project: Path, sandbox: Any) -> None:
    async with Client(build_server(settings_for(project, sandbox, sandboxes=()))) as c:  # as a paid provider
        sandbox.fault("replicate_create", action="drop", after=True)
        r = await c.call_tool("generate_image", {"prompt": "a lost answer", "model": MODEL,
                                                 "output": "image/styles/lost.png"})
        assert r.is_error and "unknown" in r.content[0].text
        status = await ok(c, "queue_status", {})
        job_id = status["recent"][0]["job_id"]
        assert status["committed_usd"] > 0  # an unknown submit counts until settled
        done = await ok(c, "queue_status", {"job_id": job_id, "wait_s": 20})
        assert done["job"]["status"] == "completed" and done["job"]["files"][0]["path"] == "image/styles/lost.png"
        assert done["job"]["cost_usd"] > 0 and done["committed_usd"] == 0
    assert creates(sandbox) == 1 and sandbox.submission_count() == 1
    record = json.loads((project / "image/log/lost.json").read_text())
    assert record["job_id"] == job_id and record["cost_usd"] > 0


async def test_none_found_releases_the_estimate(project: Path, sandbox: Any) -> None:
    async with Client(build_server(settings_for(project, sandbox, settle_after_s=0.0))) as c:
        job_id = await lost(c, "never taken", sandbox, processed=False)
        r = await c.call_tool("queue_status", {"job_id": job_id})
        assert r.is_error and "not there" in r.content[0].text and "nothing was charged" in r.content[0].text
        status = await ok(c, "queue_status", {})
        row = next(j for j in status["recent"] if j["job_id"] == job_id)
        assert row["status"] == "failed" and row["cost_usd"] == 0 and status["committed_usd"] == 0
        again = await ok(c, "generate_image", {"prompt": "never taken", "model": MODEL})
        assert again["status"] == "completed"  # no longer refused as 'unknown'
    assert sandbox.submission_count() == 1


async def test_none_found_soon_after_the_submit_is_not_settled_yet(project: Path, sandbox: Any) -> None:
    async with Client(build_server(settings_for(project, sandbox))) as c:  # listings may lag: 30 s grace
        job_id = await lost(c, "too early to tell", sandbox, processed=False)
        r = await c.call_tool("queue_status", {"job_id": job_id})
        assert r.is_error and "does not list it yet" in r.content[0].text
        status = await ok(c, "queue_status", {})
        assert next(j for j in status["recent"] if j["job_id"] == job_id)["status"] == "unknown"


async def test_several_matches_are_named_not_guessed(project: Path, sandbox: Any) -> None:
    async with Client(build_server(settings_for(project, sandbox))) as c:
        first = await lost(c, "twice lost", sandbox)
        sandbox.fault("replicate_create", action="drop", after=True)
        r = await c.call_tool("generate_image", {"prompt": "twice lost", "model": MODEL, "fresh": True})
        assert r.is_error
        r = await c.call_tool("queue_status", {"job_id": first})
        assert r.is_error and "2 requests at replicate match it" in r.content[0].text
    assert sandbox.submission_count() == 2


async def test_a_refused_lookup_says_it_cannot_reconcile(project: Path, sandbox: Any) -> None:
    async with Client(build_server(settings_for(project, sandbox))) as c:
        job_id = await lost(c, "no right to look", sandbox)
        sandbox.fault("replicate_list", status=403, body={"detail": "You do not have permission."})
        r = await c.call_tool("queue_status", {"job_id": job_id})
        assert r.is_error and "cannot look it up" in r.content[0].text and "403" in r.content[0].text


async def test_byteplus_keeps_the_honest_unknown(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox, keys={"fal": None, "byteplus": "ark-test-key-0123456789"})
    async with Client(build_server(settings)) as c:
        sandbox.fault("byteplus_generate", status=500, body={"error": {"code": "InternalServiceError",
                                                                       "message": "boom"}})
        r = await c.call_tool("generate_image", {"prompt": "synchronous", "model": "seedream-4.5"})
        assert r.is_error and "unknown" in r.content[0].text
        job_id = (await ok(c, "queue_status", {}))["recent"][0]["job_id"]
        r = await c.call_tool("queue_status", {"job_id": job_id})
        assert r.is_error and "keeps no list of requests" in r.content[0].text


@pytest.mark.parametrize("provider", ["fal", "replicate"])
async def test_a_fresh_resubmission_is_not_taken_for_the_lost_one(project: Path, sandbox: Any, provider: str) -> None:
    # the lost submit never reached the provider; the same request sent again with fresh=true is another job's
    make = make_settings if provider == "fal" else settings_for
    route = "submit" if provider == "fal" else "replicate_create"
    async with Client(build_server(make(project, sandbox))) as c:
        job_id = await lost(c, f"sent again at {provider}", sandbox, processed=False, route=route)
        again = await ok(c, "generate_image", {"prompt": f"sent again at {provider}", "model": MODEL, "fresh": True})
        assert again["status"] == "completed"
        r = await c.call_tool("queue_status", {"job_id": job_id})  # the only match is the fresh job's
        assert r.is_error and "does not list it yet" in r.content[0].text
        status = await ok(c, "queue_status", {})
        rows = {j["job_id"]: j for j in status["recent"]}
        assert rows[job_id]["status"] == "unknown" and rows[again["job_id"]]["status"] == "completed"
    assert sandbox.submission_count() == 1


# ---------------------------------------------------------------- fal: its request history (by-endpoint)


def lookups(sandbox: Any) -> list[Any]:
    return [r for r in sandbox.requests if r.route == "platform_requests"]


async def test_fal_one_match_is_adopted_and_lands_at_the_requested_output(project: Path, sandbox: Any) -> None:
    # billed as a paid provider (sandboxes=()): an unknown submit must count as committed until settled
    async with Client(build_server(make_settings(project, sandbox, sandboxes=()))) as c:
        sandbox.fault("submit", action="drop", after=True)
        r = await c.call_tool("generate_image", {"prompt": "a found answer", "model": MODEL,
                                                 "output": "image/styles/found.png"})
        assert r.is_error and "unknown" in r.content[0].text
        for n in (1, 2):  # newer requests of the endpoint: the lost one is on the history's second page
            assert (await ok(c, "generate_image", {"prompt": f"a found answer, neighbour {n}", "model": MODEL}))[
                "status"] == "completed"
        status = await ok(c, "queue_status", {})
        job_id = next(j["job_id"] for j in status["recent"] if j["status"] == "unknown")
        assert status["committed_usd"] > 0  # an unknown submit counts until settled
        done = await ok(c, "queue_status", {"job_id": job_id, "wait_s": 20})
        assert done["job"]["status"] == "completed" and done["job"]["files"][0]["path"] == "image/styles/found.png"
        assert done["job"]["cost_usd"] > 0 and done["committed_usd"] == 0
    assert creates(sandbox, "submit") == 3 and sandbox.submission_count() == 3  # two neighbours, one lost: no resend
    asked = lookups(sandbox)
    assert asked and asked[0].query["expand"] == "payloads" and asked[0].query["start"].endswith("Z")
    assert any("cursor" in q.query for q in asked)  # the second page was read (the sandbox's pages hold 2)
    record = json.loads((project / "image/log/found.json").read_text())
    assert record["job_id"] == job_id and record["cost_usd"] > 0


async def test_fal_none_found_releases_the_estimate(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox, settle_after_s=0.0))) as c:
        job_id = await lost(c, "never taken by fal", sandbox, processed=False, route="submit")
        r = await c.call_tool("queue_status", {"job_id": job_id})
        assert r.is_error and "not there" in r.content[0].text and "nothing was charged" in r.content[0].text
        status = await ok(c, "queue_status", {})
        row = next(j for j in status["recent"] if j["job_id"] == job_id)
        assert row["status"] == "failed" and row["cost_usd"] == 0 and status["committed_usd"] == 0
    assert sandbox.submission_count() == 0 and lookups(sandbox)


async def test_fal_several_matches_are_named_not_guessed(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox))) as c:
        first = await lost(c, "twice lost at fal", sandbox, route="submit")
        sandbox.fault("submit", action="drop", after=True)
        r = await c.call_tool("generate_image", {"prompt": "twice lost at fal", "model": MODEL, "fresh": True})
        assert r.is_error
        r = await c.call_tool("queue_status", {"job_id": first})
        assert r.is_error and "2 requests at fal match it" in r.content[0].text
        status = await ok(c, "queue_status", {})
        assert next(j for j in status["recent"] if j["job_id"] == first)["status"] == "unknown"
    assert sandbox.submission_count() == 2


async def test_fal_a_refused_lookup_says_it_cannot_reconcile(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox))) as c:
        job_id = await lost(c, "no right to read fal's history", sandbox, route="submit")
        sandbox.fault("platform_requests", status=403, body={"error": {"type": "authorization_error",
                                                                       "message": "Admin API key required"}})
        r = await c.call_tool("queue_status", {"job_id": job_id})
        text = r.content[0].text
        assert r.is_error and "cannot look it up at fal" in text and "403" in text and "admin-scoped key" in text
        assert KEY not in text
        status = await ok(c, "queue_status", {})
        assert next(j for j in status["recent"] if j["job_id"] == job_id)["status"] == "unknown"


async def test_fal_a_rate_limited_or_garbled_lookup_leaves_the_job_unknown(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox))) as c:
        job_id = await lost(c, "fal's history is busy", sandbox, route="submit")
        sandbox.fault("platform_requests", preset="rate_limit_429", times=2)  # the retry is refused too
        r = await c.call_tool("queue_status", {"job_id": job_id})
        assert r.is_error and "cannot look it up at fal" in r.content[0].text and "429" in r.content[0].text
        sandbox.fault("platform_requests", action="malformed")
        r = await c.call_tool("queue_status", {"job_id": job_id})
        assert r.is_error and "cannot look it up at fal" in r.content[0].text and "not JSON" in r.content[0].text
        done = await ok(c, "queue_status", {"job_id": job_id, "wait_s": 20})  # the next look finds it
        assert done["job"]["status"] == "completed"
    assert sandbox.submission_count() == 1


async def test_the_sandbox_request_history_pages_filters_and_needs_the_key(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox))) as c:
        for n in range(3):
            await ok(c, "generate_image", {"prompt": f"history {n}", "model": MODEL})
    endpoint = sandbox.submissions[-1].endpoint
    url = f"{sandbox.url}/fal/api/v1/models/requests/by-endpoint"
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sandbox.submissions[0].at - 1))
    async with httpx.AsyncClient() as http:
        assert (await http.get(url, params={"endpoint_id": endpoint})).status_code == 401
        auth = {"Authorization": f"Key {KEY}"}
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {"endpoint_id": endpoint, "start": start, "expand": "payloads", "limit": "100"}
        while True:
            page = (await http.get(url, params=params, headers=auth)).json()
            assert len(page["items"]) <= 2
            items += page["items"]
            if not page["has_more"]:
                break
            params["cursor"] = page["next_cursor"]
        mine = [i for i in items if str(i["json_input"].get("prompt", "")).startswith("history ")]
        assert [i["json_input"]["prompt"] for i in mine] == ["history 2", "history 1", "history 0"]  # newest first
        assert all(i["status_code"] == 200 and i["json_output"] for i in mine)
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        empty = (await http.get(url, params={"endpoint_id": endpoint, "start": later}, headers=auth)).json()
        assert empty["items"] == [] and not empty["has_more"]
        bare = (await http.get(url, params={"endpoint_id": endpoint, "start": start}, headers=auth)).json()
        assert bare["items"] and "json_input" not in bare["items"][0]


@pytest.mark.slow
async def test_fal_killed_while_the_submit_answer_is_late_recovers_with_one_submit(project: Path,
                                                                                   sandbox: Any) -> None:
    # The submit's answer is held back 8 s by the sandbox (after it queued the request); the server is
    # SIGKILLed while it waits, then restarted: it finds the request in fal's history by time and input.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIVP_", "FAL_", "REPLICATE_"))}
    env.update(sandbox.env())
    env.update({"FAL_KEY": KEY, "AIVP_PROJECT_DIR": str(project), "AIVP_PROVIDERS": "fal"})
    sandbox.fault("submit", action="stall", delay=8, after=True)
    killed_while_submitting(env, sandbox, project, "image/styles/late.png")
    async with Client(build_server(make_settings(project, sandbox))) as c:
        done = await recovered(c)
    assert done["job"]["status"] == "completed" and (project / "image/styles/late.png").is_file()
    assert creates(sandbox, "submit") == 1 and sandbox.submission_count() == 1


def killed_while_submitting(env: dict[str, str], sandbox: Any, project: Path, output: str) -> None:
    """Start `aivp serve`, ask for an image whose submit the sandbox takes but answers late, and SIGKILL the
    server while it waits (its ledger row still 'submitting')."""
    proc = subprocess.Popen([sys.executable, "-m", "aivp", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        def send(msg: dict[str, Any]) -> None:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(msg) + "\n")
            proc.stdin.flush()

        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
        proc.stdout.readline()
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "generate_image", "arguments": {
            "prompt": "slow create [sandbox:slow=1]", "model": MODEL, "output": output, "wait_s": 0}}})
        deadline = time.monotonic() + 20
        while sandbox.submission_count() < 1:  # the sandbox has the request; its answer is held back
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with sqlite3.connect(project / ".aivp" / "ledger.sqlite3") as db:
            assert db.execute("SELECT state FROM jobs").fetchone()[0] == "submitting"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdin.close()
        proc.stdout.close()


async def recovered(c: Client) -> dict[str, Any]:
    """Wait for the restarted server to settle the lost job, then for the job to finish; its queue_status."""
    with anyio.fail_after(30):
        while True:
            status = await ok(c, "queue_status", {})
            if status["recent"][0]["status"] in ("queued", "running", "fetching", "completed"):
                break
            await anyio.sleep(0.1)
    return await ok(c, "queue_status", {"job_id": status["recent"][0]["job_id"], "wait_s": 20})


@pytest.mark.slow
async def test_replicate_killed_during_a_slow_create_recovers_with_one_create(project: Path, sandbox: Any) -> None:
    # The create's answer is held back 8 s by the sandbox (after it took the prediction); the server is
    # SIGKILLed while it waits, then restarted: it finds the prediction by time and input.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIVP_", "FAL_", "REPLICATE_"))}
    env.update(sandbox.env())
    env.update({"REPLICATE_API_TOKEN": TOKEN, "AIVP_PROJECT_DIR": str(project), "AIVP_PROVIDERS": "replicate"})
    env.pop("FAL_KEY", None)
    sandbox.fault("replicate_create", action="stall", delay=8, after=True)
    killed_while_submitting(env, sandbox, project, "image/styles/slow.png")
    async with Client(build_server(settings_for(project, sandbox))) as c:
        done = await recovered(c)
    assert done["job"]["status"] == "completed" and (project / "image/styles/slow.png").is_file()
    assert creates(sandbox) == 1
