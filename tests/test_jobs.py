"""The job runner (jobs/runner.py, jobs/drive.py) driven directly against the sandbox, without the MCP layer.

Each test builds what app.py's lifespan builds (settings, ledger, project, providers on one shared
httpx client, a JobRunner running in a task group) and sends requests made by `domain.prepare`.
A crash is simulated by writing ledger rows directly and starting a runner on them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aivp.domain.calls import image_call
from aivp.domain.prepare import prepare
from aivp.domain.studio import Studio
from aivp.errors import SubmitUncertain
from aivp.jobs import JobRunner
from aivp.jobs.progress import Progress
from aivp.jobs.request import JobRequest, record_payload
from aivp.ledger import Ledger
from aivp.project import Project
from aivp.providers import create_all

from .conftest import make_settings, partials, png

pytestmark = pytest.mark.anyio

WAIT_S = 30.0  # an upper bound for a job against the sandbox; tests never assert on elapsed time


@asynccontextmanager
async def studio(project: Path, sandbox: Any, **overrides: Any) -> AsyncIterator[Studio]:
    """A running job runner on the project, built the way app.py's lifespan builds it (`overrides`: of the settings)."""
    settings = make_settings(project, sandbox, **overrides)
    proj = Project(settings.project_dir, settings.extra_roots)
    ledger = Ledger(proj.state_dir / "ledger.sqlite3")
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            runner = JobRunner(settings, ledger, proj, create_all(settings, client), client)
            async with anyio.create_task_group() as tg:
                await tg.start(runner.run)
                try:
                    yield Studio(settings, proj, ledger, runner)
                finally:
                    tg.cancel_scope.cancel()
    finally:
        ledger.close()


def request(st: Studio, prompt: str, **kw: Any) -> JobRequest:
    req, _why = prepare(st, image_call(prompt=prompt, **kw))
    return req


def states(st: Studio, job_id: str) -> list[str]:
    """The job's state moves from its events, repeats folded (queue position updates) and notes left out."""
    moves = ("pending", "submitting", "queued", "running", "fetching", "completed", "failed", "canceled", "unknown")
    out: list[str] = []
    for e in st.ledger.events(job_id):
        if e["state"] in moves and (not out or out[-1] != e["state"]):
            out.append(e["state"])
    return out


def insert_like(st: Studio, req: JobRequest) -> Any:
    """The ledger row runner.start writes, written directly (no runner drives it): a crash right after."""
    b = req.built
    row, created = st.ledger.insert(
        idem_key=req.idem_key(), tool=req.tool, model_id=b.model.id, provider=req.provider, endpoint=b.route.endpoint,
        task=b.endpoint.task, request=record_payload(b.payload), spec=req.spec(), estimate_usd=req.estimate.usd,
        sandbox=st.settings.sandboxed(req.provider))
    assert created
    return row


# ---------------------------------------------------------------- a job from start to finish

async def test_a_job_moves_through_every_state_to_its_file_and_record(project: Path, sandbox: Any) -> None:
    async with studio(project, sandbox) as st:
        req = request(st, "A lighthouse at dusk", output="image/frames/shot-01-ff.png")
        started = await st.runner.start(req)
        assert started.created and started.row.state == "pending"
        seen: list[Progress] = []

        async def on_progress(p: Progress) -> None:
            seen.append(p)

        row = await st.runner.wait(started.row.id, WAIT_S, on_progress)
        assert row.state == "completed", (row.error, row.error_code)
        moves = states(st, row.id)
        assert moves[:2] == ["pending", "submitting"] and moves[-2:] == ["fetching", "completed"]
        assert moves[2] == "queued" and set(moves[2:-2]) <= {"queued", "running"}
        assert "result" in [e["state"] for e in st.ledger.events(row.id)]  # the result was fetched once

        file = project / "image/frames/shot-01-ff.png"
        assert file.is_file() and [o["path"] for o in row.outputs] == ["image/frames/shot-01-ff.png"]
        assert row.outputs[0]["sha256"] and row.request_id and row.submitted_at and row.finished_at
        assert row.cost_usd == pytest.approx(req.estimate.usd) and row.owner == st.runner.owner
        record = json.loads((project / "image/log/shot-01-ff.json").read_text())
        assert (record["job_id"], record["file"], record["status"], record["type"]) == \
            (row.id, "image/frames/shot-01-ff.png", "completed", "keyframe")
        assert record["request_id"] == row.request_id and row.sandbox  # the sandbox's URLs are on 127.0.0.1
        assert record["cost_usd"] == 0 and record["sandbox"] is True and record["would_cost_usd"] == pytest.approx(
            row.cost_usd)
        assert "| shot-01-ff | `image/frames/shot-01-ff.png` |" in (project / "image/plan.md").read_text()
        assert seen and seen[-1].terminal and seen[-1].state == "completed"
        assert partials(project) == [] and sandbox.submission_count() == 1


async def test_the_same_request_is_one_submission_and_fresh_pays_again(project: Path, sandbox: Any) -> None:
    async with studio(project, sandbox) as st:
        args = {"prompt": "Two gulls over the reef [sandbox:slow=0.3]", "output": "image/styles/gulls.png"}
        first = await st.runner.start(request(st, **args))
        joined = await st.runner.start(request(st, **args))  # while the first is still in flight
        assert first.created and not joined.created and joined.row.id == first.row.id
        done = await st.runner.wait(first.row.id, WAIT_S)
        assert done.state == "completed"
        reused = await st.runner.start(request(st, **args))  # finished, its file still there
        assert not reused.created and reused.row.id == first.row.id and reused.row.state == "completed"
        assert sandbox.submission_count() == 1

        again = await st.runner.start(request(st, **args, fresh=True))
        assert again.created and again.row.id != first.row.id
        row = await st.runner.wait(again.row.id, WAIT_S)
        assert row.state == "completed" and sandbox.submission_count() == 2
        assert row.outputs[0]["path"] == "image/styles/gulls-2.png"  # the first take is kept
        assert (project / "image/styles/gulls.png").is_file()
        spend = st.ledger.spend()
        assert spend["completed_jobs"] == 2 and spend["would_cost_usd"] == pytest.approx(2 * row.cost_usd)
        assert spend["spent_usd"] == 0  # sandbox jobs: what the real provider would have charged, not spent


async def test_a_deleted_result_is_made_again(project: Path, sandbox: Any) -> None:
    async with studio(project, sandbox) as st:
        args = {"prompt": "A storm lantern", "output": "image/styles/lantern.png"}
        first = await st.runner.start(request(st, **args))
        assert (await st.runner.wait(first.row.id, WAIT_S)).state == "completed"
        (project / "image/styles/lantern.png").unlink()
        again = await st.runner.start(request(st, **args))
        assert again.created and again.row.id != first.row.id
        assert (await st.runner.wait(again.row.id, WAIT_S)).state == "completed"
        assert (project / "image/styles/lantern.png").is_file() and sandbox.submission_count() == 2


async def test_a_refused_job_fails_with_its_reason_and_no_cost(project: Path, sandbox: Any) -> None:
    async with studio(project, sandbox) as st:
        started = await st.runner.start(request(st, "[sandbox:unsafe] a forbidden picture"))
        row = await st.runner.wait(started.row.id, WAIT_S)
        assert row.state == "failed" and row.error_code == "safety_refusal" and row.cost_usd == 0.0
        assert row.error and row.outputs == [] and states(st, row.id)[-1] == "failed"
        assert st.ledger.spend()["committed_usd"] == 0.0


# ---------------------------------------------------------------- cancel

async def test_cancel_a_pending_job_sends_nothing(project: Path, sandbox: Any) -> None:
    png(project / "in/ref.png", size=(64, 64))
    sandbox.fault("token", action="stall", delay=3.0)  # the input upload hangs: the job stays pending
    async with studio(project, sandbox) as st:
        started = await st.runner.start(request(st, "Mara at the rail", references=["in/ref.png"],
                                                output="image/frames/shot-02-ff.png"))
        await anyio.wait_all_tasks_blocked()  # the job's task is inside the upload
        assert st.ledger.get(started.row.id).state == "pending"  # type: ignore[union-attr]
        row, note = await st.runner.cancel(started.row.id)
        assert row.state == "canceled" and row.cost_usd == 0.0 and "nothing was charged" in note
        await anyio.wait_all_tasks_blocked()  # the job's task has wound down
        row = st.runner.get(started.row.id)
        assert row.state == "canceled" and states(st, row.id) == ["pending", "canceled"]
        assert "| shot-02-ff | `image/frames/shot-02-ff.png` |" in (project / "image/plan.md").read_text()
        again, note = await st.runner.cancel(started.row.id)
        assert again.state == "canceled" and "already ended" in note
    assert sandbox.submission_count() == 0 and not (project / "image/frames/shot-02-ff.png").exists()


async def test_cancel_a_queued_job_at_the_provider(project: Path, sandbox: Any) -> None:
    sandbox.stick_queue(True)
    async with studio(project, sandbox) as st:
        started = await st.runner.start(request(st, "A job nobody will run"))
        queued = anyio.Event()

        async def on_progress(p: Progress) -> None:
            if p.state == "queued":
                queued.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(st.runner.wait, started.row.id, WAIT_S, on_progress)
            await queued.wait()
            row, note = await st.runner.cancel(started.row.id)
        assert row.state == "canceled" and note == "Cancelled at the provider."
        assert "cancel_requested" in [e["state"] for e in st.ledger.events(row.id)]
        assert sandbox.submission_count() == 1 and not (project / "image").exists()


# ---------------------------------------------------------------- a restart after a crash

async def test_resume_settles_rows_a_crash_left_behind(project: Path, sandbox: Any) -> None:
    async with studio(project, sandbox, sandboxes=()) as st:  # the sandbox as a paid provider
        before_pending = insert_like(st, request(st, "never sent"))
        before_submitting = insert_like(st, request(st, "maybe sent"))
        st.ledger.update(before_submitting.id, state="submitting", expect=("pending",))
        # both rows have no owner: a server that died before it could say anything
        st.runner.resume()
        pending = st.runner.get(before_pending.id)
        assert (pending.state, pending.error_code, pending.cost_usd) == ("failed", "interrupted", 0.0)
        assert "nothing was sent or charged" in (pending.error or "")
        unknown = st.runner.get(before_submitting.id)
        assert (unknown.state, unknown.error_code, unknown.cost_usd) == ("unknown", "submit_uncertain", None)
        assert "fresh=true" in (unknown.error or "")
        assert st.ledger.spend()["committed_usd"] == pytest.approx(unknown.estimate_usd)  # may have been charged
    assert sandbox.submission_count() == 0


async def test_resume_happens_when_the_runner_starts(project: Path, sandbox: Any) -> None:
    async with studio(project, sandbox) as st:
        row = insert_like(st, request(st, "left pending by a crash"))
        other = insert_like(st, request(st, "driven by another live process"))
        st.ledger.update(other.id, owner="otherhost:1:live", heartbeat_at=9e12)  # a heartbeat from the future
        owner = st.runner.owner
    async with studio(project, sandbox) as again:
        assert again.runner.owner != owner
        assert again.runner.get(row.id).state == "failed"
        assert again.runner.get(other.id).state == "pending"  # not ours to settle
    assert sandbox.submission_count() == 0


async def test_an_unknown_submit_is_refused_until_fresh(project: Path, sandbox: Any) -> None:
    async with studio(project, sandbox) as st:
        req = request(st, "Did this one go through?")
        row = insert_like(st, req)
        st.ledger.update(row.id, state="submitting", expect=("pending",))
        st.runner.resume()
        assert st.runner.get(row.id).state == "unknown"
        for _ in range(2):
            with pytest.raises(SubmitUncertain, match="answer was lost") as info:
                await st.runner.start(request(st, "Did this one go through?"))
            assert row.id in str(info.value) and "fresh=true" in str(info.value)
        assert sandbox.submission_count() == 0 and len(st.ledger.recent()) == 1
        fresh = await st.runner.start(request(st, "Did this one go through?", fresh=True))
        assert fresh.created and (await st.runner.wait(fresh.row.id, WAIT_S)).state == "completed"
        assert sandbox.submission_count() == 1 and st.runner.get(row.id).state == "unknown"


async def test_a_queued_job_is_followed_by_the_next_runner_without_a_second_submit(project: Path, sandbox: Any) -> None:
    sandbox.stick_queue(True)
    async with studio(project, sandbox) as st:
        started = await st.runner.start(request(st, "Across a restart", output="image/styles/restart.png"))
        queued = anyio.Event()

        async def on_progress(p: Progress) -> None:
            if p.state == "queued":
                queued.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(st.runner.wait, started.row.id, WAIT_S, on_progress)
            await queued.wait()
            tg.cancel_scope.cancel()
    # the first runner stopped with the job queued at the provider and handed it back
    assert sandbox.submission_count() == 1
    sandbox.stick_queue(False)
    async with studio(project, sandbox) as st:
        before = st.ledger.get(started.row.id)
        assert before is not None and before.request_id and before.owner == st.runner.owner  # taken over
        row = await st.runner.wait(started.row.id, WAIT_S)
        assert row.state == "completed" and (project / "image/styles/restart.png").is_file()
        assert row.request_id == before.request_id
    assert sandbox.submission_count() == 1
