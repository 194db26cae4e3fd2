"""Sandbox runs are not spending (issue 11 item 3): a job sent to a sandbox is marked so in the ledger, its
records and results say it cost nothing and what it would have cost, queue_status reports real spend and
would-have-been spend apart (and lists the jobs in its text), and the budget counts only real spend.

"Real" here is the same sandbox with `settings.sandboxes=()`: aivp then treats it as a paid provider."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import ElicitResult

from aivp.app import build_server
from aivp.demo import SAMPLE
from aivp.ledger import Ledger
from aivp.migrations import MIGRATIONS
from aivp.settings import Settings

from .conftest import make_settings, ok, refused

pytestmark = pytest.mark.anyio


async def test_a_sandbox_job_costs_nothing_and_says_what_it_would_have_cost(client: Client, project: Path,
                                                                            sandbox: Any) -> None:
    r = await client.call_tool("generate_image", {"prompt": "a lighthouse", "output": "image/styles/light.png"})
    assert not r.is_error
    job = r.structured_content
    assert job is not None and job["sandbox"] is True and job["cost_usd"] == 0
    assert job["would_cost_usd"] == pytest.approx(0.15) == job["estimate_usd"]
    assert "sandbox placeholder, no charge; ~$0.150 on the real provider" in r.content[0].text
    record = json.loads((project / "image/log/light.json").read_text())
    assert record["sandbox"] is True and record["cost_usd"] == 0 and record["job_cost_usd"] == 0
    assert record["would_cost_usd"] == pytest.approx(0.15)
    with sqlite3.connect(project / ".aivp" / "ledger.sqlite3") as db:  # durable: a restart reads it back
        assert db.execute("SELECT sandbox, cost_usd FROM jobs").fetchall() == [(1, pytest.approx(0.15))]


async def test_queue_status_splits_real_from_sandbox_spend_and_lists_the_jobs(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox))) as c:
        one = await ok(c, "generate_image", {"prompt": "sandbox one", "output": "image/styles/one.png"})
        await ok(c, "generate_image", {"prompt": "sandbox two", "num_images": 2, "output": "image/styles/two.png"})
    async with Client(build_server(make_settings(project, sandbox, sandboxes=()))) as c:
        real = await ok(c, "generate_image", {"prompt": "a real one", "output": "image/styles/real.png"})
        r = await c.call_tool("queue_status", {})
    assert not r.is_error and r.structured_content is not None
    status = r.structured_content
    assert status["spent_usd"] == pytest.approx(0.15) and status["would_cost_usd"] == pytest.approx(0.45)
    assert status["committed_usd"] == 0
    lines = r.content[0].text.splitlines()
    assert lines[0] == ("3 recent job(s); $0.15 real spend, $0.00 running; $0.45 would have been charged "
                        "(sandbox, placeholders).")
    assert len(lines) == 4 and lines[1].startswith(real["job_id"]) and lines[3].startswith(one["job_id"])
    assert re.fullmatch(rf"{real['job_id']} generate_image/nano-banana-pro completed \d+s ago \$0\.150 "
                        r"image/styles/real\.png", lines[1]), lines[1]
    assert lines[2].endswith(" sandbox image/styles/two.png +1") and " completed " in lines[2]
    recent = {j["job_id"]: j for j in status["recent"]}
    assert recent[one["job_id"]]["sandbox"] is True and recent[one["job_id"]]["cost_usd"] == 0
    assert recent[real["job_id"]]["sandbox"] is False and recent[real["job_id"]]["cost_usd"] == pytest.approx(0.15)


async def test_the_budget_ignores_sandbox_jobs_and_still_stops_real_spend(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox, budget_usd=0.20))) as c:
        for n in range(3):  # $0.45 of placeholders against a $0.20 budget: none of it is spending
            await ok(c, "generate_image", {"prompt": f"placeholder {n}"})
        status = await ok(c, "queue_status", {})
    assert status["spent_usd"] == 0 and status["would_cost_usd"] == pytest.approx(0.45)
    assert sandbox.submission_count() == 3
    async with Client(build_server(make_settings(project, sandbox, budget_usd=0.20, sandboxes=()))) as c:
        await ok(c, "generate_image", {"prompt": "real and within budget"})  # the sandbox's $0.45 does not count
        text = await refused(c, "generate_image", {"prompt": "real and over budget"})
        assert "budget" in text and "$0.15 spent" in text and "Nothing was sent" in text
    assert sandbox.submission_count() == 4


async def test_a_storyboard_run_on_the_sandbox_is_not_held_to_the_budget(project: Path, sandbox: Any) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    args = {"mode": "run", "shots": ["1"], "stages": ["portraits"], "wait_s": 20}
    async with Client(build_server(make_settings(project, sandbox, budget_usd=0.01, sandboxes=()))) as c:
        assert "budget" in await refused(c, "run_storyboard", args)
    assert sandbox.submission_count() == 0
    async with Client(build_server(make_settings(project, sandbox, budget_usd=0.01))) as c:
        plan = await ok(c, "run_storyboard", {**args, "mode": "plan"})
        assert plan["estimate_usd"] > 0.01 and all(s.get("sandbox") for s in plan["steps"] if s["status"] == "pending")
        r = await c.call_tool("run_storyboard", {**args, "mode": "plan"})
        assert "on the real models (sandbox: placeholders, nothing is charged)" in r.content[0].text
        run = await ok(c, "run_storyboard", args)
        assert run["status"] == "done", run["next_step"]
    assert sandbox.submission_count() == len([s for s in plan["steps"] if s["status"] == "pending"])


async def test_a_sandbox_placeholder_never_answers_a_real_call(project: Path, sandbox: Any) -> None:
    args = {"prompt": "the same request", "output": "image/styles/same.png"}
    async with Client(build_server(make_settings(project, sandbox))) as c:
        first = await ok(c, "generate_image", args)
        again = await ok(c, "generate_image", args)
    assert again["job_id"] == first["job_id"] and again["reused"] and sandbox.submission_count() == 1
    async with Client(build_server(make_settings(project, sandbox, sandboxes=()))) as c:
        real = await ok(c, "generate_image", {**args, "overwrite": True})
    assert real["job_id"] != first["job_id"] and not real["sandbox"] and sandbox.submission_count() == 2


async def test_the_spend_question_says_a_sandbox_run_charges_nothing(project: Path, sandbox: Any) -> None:
    asked: list[str] = []

    async def on_elicit(ctx: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": True})

    for paid in (False, True):
        settings = make_settings(project, sandbox, confirm_above_usd=0.0, **({"sandboxes": ()} if paid else {}))
        async with Client(build_server(settings), elicitation_callback=on_elicit) as c:
            await ok(c, "generate_image", {"prompt": f"asked first, paid={paid}"})
    assert len(asked) == 2 and all("Spend about $0.15?" in m for m in asked)
    assert "Sandbox: placeholders, nothing is charged" in asked[0]
    assert "Sandbox" not in asked[1]  # a paid provider: no such promise


def test_a_provider_is_a_sandbox_when_all_its_urls_are_on_this_machine(tmp_path: Path, sandbox: Any) -> None:
    real = Settings.from_env({}, project_dir=tmp_path)
    assert not any(real.sandboxed(p) for p in ("fal", "replicate", "byteplus"))
    local = Settings.from_env(sandbox.env(), project_dir=tmp_path)
    assert all(local.sandboxed(p) for p in ("fal", "replicate", "byteplus"))
    assert not make_settings(tmp_path, sandbox, sandboxes=()).sandboxed("fal")
    for url, expected in (("http://localhost:8765/fal/queue", True), ("http://[::1]:8765/q", True),
                          ("http://127.0.0.2:9/q", True), ("https://127.0.0.1.example.com/q", False),
                          ("https://queue.fal.run", False)):
        s = Settings.from_env({"AIVP_REPLICATE_URL": url, "AIVP_SANDBOX": "1"}, project_dir=tmp_path)
        assert s.sandboxed("replicate") is expected, url
    # loopback alone is a local proxy as well as the sandbox: without AIVP_SANDBOX=1 its jobs are paid
    proxy = Settings.from_env({k: v for k, v in sandbox.env().items() if k != "AIVP_SANDBOX"}, project_dir=tmp_path)
    assert not any(proxy.sandboxed(p) for p in ("fal", "replicate", "byteplus"))
    half = Settings.from_env({"AIVP_FAL_QUEUE_URL": f"{sandbox.url}/fal/queue", "AIVP_SANDBOX": "1"},
                             project_dir=tmp_path)
    assert not half.sandboxed("fal")  # its other URLs reach fal itself: counted as real, never hidden


def test_m005_marks_the_old_sandbox_rows_and_keeps_the_rest_real(tmp_path: Path) -> None:
    path = tmp_path / ".aivp" / "ledger.sqlite3"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    try:  # a ledger as aivp wrote it up to m004
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for name, sql in MIGRATIONS[:4]:
            for statement in sql.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO _migrations VALUES (?, '2026-01-01T00:00:00.000Z')", (name,))
        assert [n for n, _ in MIGRATIONS[:4]][-1] == "m004_upload_scope"

        def row(job_id: str, provider: str, state: str, cost: float | None, handle: Any, outputs: Any) -> None:
            db.execute("INSERT INTO jobs (id, idem_key, tool, model_id, provider, endpoint, task, state, request_json, "
                       "spec_json, estimate_usd, cost_usd, created_at, updated_at, handle_json, outputs_json) VALUES "
                       "(?, ?, 'generate_image', 'm', ?, 'e', 't2i', ?, '{}', ?, 0.5, ?, 'now', 'now', ?, ?)",
                       (job_id, job_id, provider, state, json.dumps({"kind": "image", "mode": "T2I", "shape": "images"}),
                        cost, json.dumps(handle) if handle else None, json.dumps(outputs) if outputs else None))

        row("real", "fal", "completed", 0.5, {"urls": {"status": "https://queue.fal.run/x/requests/1/status"}},
            [{"path": "image/a.png", "url": "https://v3.fal.media/files/a.png"}])
        row("demo", "fal", "completed", 0.5, {"urls": {"status": "http://127.0.0.1:35611/fal/queue/x/status"}},
            [{"path": "image/b.png", "url": "http://127.0.0.1:35611/fal/cdn/files/out/b.png"}])
        row("ark-demo", "byteplus", "completed", 0.5, {"provider": "byteplus", "urls": {}},
            [{"path": "image/c.png", "url": "http://localhost:8765/byteplus/tos/c.png"}])
        row("no-urls", "byteplus", "running", None, None, None)  # nothing tells: counted as real
        db.commit()
    finally:
        db.close()
    led = Ledger(path)
    try:
        flags = {r.id: r.sandbox for r in led.recent()}
        assert flags == {"real": False, "demo": True, "ark-demo": True, "no-urls": False}
        assert led.spend() == {"spent_usd": 0.5, "committed_usd": 0.5, "completed_jobs": 3, "would_cost_usd": 1.0}
        demo = led.get("demo")
        assert demo is not None and demo.charged_usd == 0 and demo.would_cost_usd == 0.5
        assert [o["path"] for o in demo.outputs] == ["image/b.png"]  # the old row is intact
    finally:
        led.close()


async def test_a_dry_run_on_the_sandbox_says_a_run_would_charge_nothing(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox))) as c:
        r = await c.call_tool("generate_image", {"prompt": "a lighthouse", "dry_run": True})
        assert not r.is_error and r.structured_content is not None and r.structured_content["sandbox"] is True
        assert "sandbox here" in r.content[0].text and "$0.150" in r.content[0].text  # the real price still shown
    async with Client(build_server(make_settings(project, sandbox, sandboxes=()))) as c:
        r = await c.call_tool("generate_image", {"prompt": "a lighthouse", "dry_run": True})
        assert "sandbox" not in r.content[0].text and r.structured_content["sandbox"] is False
