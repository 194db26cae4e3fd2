"""The job runner: start, wait for, cancel and resume jobs (driving each one is in `drive.py`).

For every generation: a ledger row first (idempotency key = provider + endpoint + canonical
input + output target), then uploads and the submit, then following the job (SSE or polling),
fetching its result and writing the files (see `outputs.py` and `records.py`). Jobs run in the server's task
group, not in the tool call that started them: a caller waits at most `wait_s` and gets a handle,
and a client that cancels its call only detaches. On start-up every unfinished job in the ledger
is picked up again without a second submit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio

from ..budget import check_budget
from ..errors import InvalidParameterError, SubmitUncertain
from ..jobspec import JobSpec
from ..ledger import ACTIVE_STATES, JobRow, StateChanged, now_iso
from ..providers.base import Handle
from . import outputs
from .drive import dashboard
from .reconcile import Reconciler
from .owners import HEARTBEAT_S, LIVE_OWNERS
from .progress import Progress, describe_state
from .request import JobRequest, record_payload

log = logging.getLogger("aivp.jobs")


@dataclass(frozen=True)
class Started:
    row: JobRow
    created: bool  # False: an identical job was reused (completed) or joined (in flight)


class JobRunner(Reconciler):
    """Owns every job of one project for the life of the server."""

    # ---------------------------------------------------------------- life cycle

    async def run(self, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled (server shutdown); unfinished jobs stay in the ledger for next time."""
        LIVE_OWNERS.add(self.owner)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self.resume()
                tg.start_soon(self._heartbeat)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            LIVE_OWNERS.discard(self.owner)
            self.ledger.release(self.owner)

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(HEARTBEAT_S)
            self.ledger.heartbeat(self.owner)

    def resume(self) -> None:
        """Pick up every unfinished job, and look up every submit whose answer was lost."""
        for row in self.ledger.recent(limit=200, states=("unknown",)):
            self.settle_soon(row.id)
        for row in self.ledger.unfinished():
            if not self._claim(row.id):
                continue  # another live server process is driving it
            if row.state == "pending":
                self.ledger.update(row.id, state="failed", error_code="interrupted", cost_usd=0.0, finished_at=now_iso(),
                                   error="The server stopped before this job was submitted; nothing was sent or "
                                         "charged. Call the tool again.")
            elif row.state == "submitting":
                self._mark_unknown(row.id, "The server stopped while the submit was in flight")
                self.settle_soon(row.id)
            else:
                log.info("resuming job %s (%s) at %s", row.id, row.endpoint, row.state)
                self._spawn(row.id)

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run a task (a storyboard run) in the server's task group: it outlives the tool call."""
        if self._tg is None:
            raise RuntimeError("the job runner is not running")

        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception:  # an escaping error would take the whole server down with the task group
                log.exception("background task %s failed", getattr(fn, "__name__", fn))

        self._tg.start_soon(guarded)

    # ---------------------------------------------------------------- starting and waiting

    async def start(self, req: JobRequest, started_by: str | None = None) -> Started:
        """Create the job (or find the identical one), then run it in the background.

        `started_by` (a remote caller's token subject) is recorded on a job this call creates; a call that
        joins an identical job leaves its starter as it was."""
        project = self.project
        sandbox = self.settings.sandboxed(req.provider)  # costs nothing: the budget is left alone

        def reuse(rows: list[JobRow]) -> JobRow | None:
            if req.fresh:
                return None
            for r in rows:
                if r.sandbox != sandbox:  # a sandbox's placeholder never answers a real call, nor the other way round
                    continue
                if r.state in (*ACTIVE_STATES, "unsaved") or (r.state == "completed" and
                                                               outputs.still_there(project, r.outputs)):
                    return r
                if r.state == "unknown":  # the same request may already be running (and billed) at the provider
                    raise SubmitUncertain(
                        f"An identical request (job {r.id}) was sent but its answer was lost, so it may be running "
                        f"at {r.provider} already. queue_status(job_id='{r.id}') looks it up there and settles it; "
                        f"or check {dashboard(self.providers.get(r.provider))}. To submit it again anyway, call "
                        "with fresh=true."
                    )
            return None

        budget = req.budget_usd if req.budget_usd is not None else self.settings.budget_usd

        def within_budget() -> None:  # inside the insert's transaction: two calls cannot both squeeze under the cap
            check_budget(self.ledger.spend(), req.estimate.usd, budget)

        b = req.built
        self.providers[req.provider].check_endpoint(b.route.endpoint)
        row, created = self.ledger.insert(
            idem_key=req.idem_key(), tool=req.tool, model_id=b.model.id, provider=req.provider,
            endpoint=b.route.endpoint, task=b.endpoint.task, request=record_payload(b.payload), spec=req.spec(),
            estimate_usd=round(req.estimate.usd, 6), reuse=reuse, guard=None if sandbox else within_budget,
            owner=self.owner, started_by=started_by, sandbox=sandbox,
        )
        if created:
            self._payloads[row.id] = (b.payload, req.fresh)
            self._spawn(row.id)
        elif row.active:
            self._spawn(row.id)  # a job left by another server process or a stalled follow
        return Started(row, created)

    def adopt(self, provider: str, endpoint: str, request_id: str, *, model_id: str, task: str, kind: str,
              shape: str) -> Started:
        """Follow a request submitted outside aivp (by id) and download its result like any job."""
        request_id = self.providers[provider].check_request_id(request_id)  # before it is stored or put in a URL
        existing = self.ledger.find_request(provider, request_id)
        if existing is not None:
            if existing.active:
                self._spawn(existing.id)
            return Started(existing, False)
        handle = self.providers[provider].handle_for(endpoint, request_id)
        spec = JobSpec(kind=kind, mode="EXTERNAL", shape=shape, model=model_id, record_type="external",
                       warnings=("Submitted outside aivp: its input and cost are not known here.",))
        row, _ = self.ledger.insert(idem_key=f"adopt:{provider}:{endpoint}:{request_id}", tool="queue_status",
                                    model_id=model_id, provider=provider, endpoint=endpoint, task=task, request={},
                                    spec=spec, estimate_usd=0.0, owner=self.owner,
                                    sandbox=self.settings.sandboxed(provider))
        row = self.ledger.update(row.id, state="queued", request_id=request_id, handle=handle.to_json(),
                                 submitted_at=now_iso(), event="adopted")
        self._spawn(row.id)
        return Started(row, True)

    async def wait(self, job_id: str, timeout: float,
                   on_progress: Callable[[Progress], Awaitable[None]] | None = None) -> JobRow:
        """Wait up to `timeout` seconds for the job to end, forwarding progress; return the row either way."""
        row = self.get(job_id)
        if not row.active:
            return row
        self._spawn(job_id)
        live = self._live.of(job_id)
        send, receive = anyio.create_memory_object_stream[Progress](64)
        live.subscribers.add(send)
        try:
            with anyio.move_on_after(max(0.0, timeout)):
                if on_progress is not None:
                    await on_progress(self._live.event(self.get(job_id)))
                seen = (row.state, row.queue_position)
                async with receive:
                    while not live.done.is_set():
                        with anyio.move_on_after(1.0):
                            event = await receive.receive()
                            if on_progress is not None:
                                await on_progress(event)
                            if event.terminal:
                                break
                            continue
                        # a quiet second: the job may be driven by another process, or its owner may have died
                        row = self.get(job_id)
                        if not row.active:
                            break
                        if not self._spawn(job_id) and (row.state, row.queue_position) != seen:
                            seen = (row.state, row.queue_position)
                            if on_progress is not None:
                                await on_progress(self._live.event(row, f"{describe_state(row)} (another aivp process)"))
        finally:
            live.subscribers.discard(send)
            send.close()
        return self.get(job_id)

    def retry_save(self, job_id: str, output: str | None = None) -> JobRow:
        """Save an 'unsaved' job's paid result again (under `output` when given): back to 'fetching'."""
        row = self.get(job_id)
        if row.state != "unsaved":
            raise InvalidParameterError(f"Job {job_id} is {row.state}; only a job whose result could not be saved "
                                        "(unsaved) can be saved again under another name.")
        values: dict[str, Any] = {}
        if output is not None:
            kind = "video" if row.spec.kind == "video" else "image"
            self.project.check_saveable(output, kind)
            values["spec"] = replace(row.spec, targets=(self.project.rel(self.project.output_path(output)),))
            values["outputs"] = []
        try:
            self.ledger.update(job_id, state="fetching", finished_at=None, error=None, error_code=None,
                               event="retry_save", expect=("unsaved",), **values)
        except StateChanged:  # another call or process got there first
            pass
        self._live.restart(job_id)
        self._spawn(job_id)
        return self.get(job_id)

    async def cancel(self, job_id: str, by: str | None = None) -> tuple[JobRow, str]:
        """Cancel at the provider. Returns the row and what happened, in words.

        `by` (who asked) is recorded on the job, so a client that shares the job learns who stopped it."""
        row = self.get(job_id)
        if not row.active:
            return row, f"The job had already ended ({row.state}); nothing to cancel."
        who = f" by {by}" if by else ""
        if row.state == "pending":
            live = self._live.peek(job_id)
            if live and live.scope:
                live.scope.cancel()
            row = self._finish(job_id, "canceled", error=f"Cancelled{who} before it was submitted; nothing was charged.",
                               cost_usd=0.0, canceled_by=by)
            return row, f"Cancelled{who} before it was submitted; nothing was charged."
        with anyio.move_on_after(10):  # a submit in flight: wait for its request id
            while (row := self.get(job_id)).state == "submitting":
                await anyio.sleep(0.05)
        if row.handle is None:
            return row, f"The job is {row.state}; there is no remote request to cancel."
        provider = self.providers[row.provider]
        accepted = await provider.cancel(Handle.from_json(row.handle))
        self.ledger.update(job_id, event="cancel_requested", canceled_by=by if accepted else row.canceled_by,
                           detail=("accepted" if accepted else "already completed") + who)
        if not accepted:
            return row, "The provider had already finished the job; its result is being fetched."
        self._spawn(job_id)
        row = await self.wait(job_id, 5.0)
        note = (f"Cancelled{who} at the provider." if row.state == "canceled" else
                "The provider accepted the cancel; a job that was already running may still finish and be billed.")
        return row, note

