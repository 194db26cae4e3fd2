"""Driving one job through its states: submit, follow, fetch; the only code that moves a job's state.

    pending ──► submitting ──► queued ──► running ──► fetching ──► completed
       │             │            │          │            │
       │             └► unknown   └──────────┴────────────┴──► failed / canceled
       └► failed (interrupted before the submit: nothing was sent or charged)

`JobDriver` holds what every job needs (settings, ledger, project, providers, the shared HTTP
client) and the per-job steps; `JobRunner` (runner.py) adds the public API: start, wait, cancel,
adopt, resume. Every ledger write that changes a job is in one of these two modules.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup

from ..errors import (
    AivpError,
    JobCanceled,
    JobFailed,
    JobNotFound,
    OutputLost,
    ProviderAuthError,
    ProviderError,
    ProviderHTTPError,
    SubmitUncertain,
)
from ..inputs import InputRef, iter_inputs, map_inputs
from ..ledger import JobRow, Ledger, StateChanged, now_iso
from ..project import Project
from ..providers import spec_for
from ..providers.base import Canceled, Completed, Handle, Provider, Queued, Running
from ..providers.http import RetryPolicy
from ..settings import Settings
from . import outputs, records
from .owners import STALE_S, new_owner, owner_dead
from .progress import Watchers
from .request import record_payload
from .uploads import reupload, upload_inputs, uploaded_files

log = logging.getLogger("aivp.jobs")


class JobDriver:
    """The per-job state machine, and the shared things it runs on."""

    def __init__(self, settings: Settings, ledger: Ledger, project: Project,
                 providers: dict[str, Provider], client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.ledger = ledger
        self.project = project
        self.providers = providers
        self.client = client
        self._tg: TaskGroup | None = None
        self._live = Watchers()
        # native payloads of jobs created here, until submitted, and whether to upload their files afresh
        self._payloads: dict[str, tuple[dict[str, Any], bool]] = {}
        # Only the local work (downloads, checks) is bounded: submits queue at the provider, not here.
        self._downloads = anyio.Semaphore(settings.max_parallel_downloads)
        self.policy = RetryPolicy(settings.retry_attempts, settings.retry_base_s, settings.retry_cap_s)
        # Several server processes may share a project (a desktop client and a CLI run): each job is driven by
        # one owner at a time, and only a dead or silent owner's jobs are taken over.
        self.owner = new_owner()

    def _claim(self, job_id: str) -> bool:
        return self.ledger.claim(job_id, self.owner, stale_before=time.time() - STALE_S, dead=owner_dead)

    def _spawn(self, job_id: str) -> bool:
        """Drive the job in this process if no other live process does; True when this process drives it."""
        live = self._live.of(job_id)
        if live.driving:
            return True
        if self._tg is None or not self._claim(job_id):
            return False
        live.driving = True
        self._tg.start_soon(self._drive, job_id)
        return True

    def get(self, job_id: str) -> JobRow:
        row = self.ledger.get(job_id.strip())
        if row is None:
            raise JobNotFound(f"No job {job_id!r} in this project's ledger; call queue_status() to list recent jobs.")
        return row

    async def _drive(self, job_id: str) -> None:
        live = self._live.of(job_id)
        try:
            with anyio.CancelScope() as scope:
                live.scope = scope
                await self._drive_once(job_id)
        except Exception as exc:  # a bug or a full disk must not kill the server
            log.exception("job %s: unexpected error", job_id)
            current = self.get(job_id)
            if current.state == "fetching":  # paid and done at the provider: end it where a person can pick it up
                self._unsaved(current, exc)
            else:  # not submitted yet, or in flight: it stays resumable
                self.ledger.update(job_id, error_code="save_failed", error=(
                    f"aivp could not go on with this job ({type(exc).__name__}: {exc}). Fix the cause, then call "
                    f"queue_status(job_id='{job_id}') to try again."))
        finally:
            live.driving = False
            live.scope = None
            last = self.ledger.get(job_id)
            if last is not None:  # waiters return now, also when the job stopped short of an end
                self._live.publish(last, stopped=True)

    async def _drive_once(self, job_id: str) -> None:
        row = self.get(job_id)
        provider = self.providers[row.provider]
        try:
            if row.state == "pending":
                handle = await self._submit(row, provider)
                if handle is None:
                    return
                row = self.get(job_id)
            if row.state in ("queued", "running"):
                if not await self._follow(row, provider):
                    return
                row = self.get(job_id)
            if row.state == "fetching":
                async with self._downloads:
                    await self._fetch(row, provider)
        except JobCanceled as exc:
            self._finish(job_id, "canceled", error=str(exc), cost_usd=0.0)
        except JobNotFound as exc:  # the provider forgot the request (expired): nothing more to follow
            self._finish(job_id, "failed", error=f"{exc} The job cannot be followed any more.", error_code=exc.code)
        except JobFailed as exc:
            if exc.error_type == "file_download_error" and await self._resend_with_new_uploads(job_id, provider):
                await self._drive_once(job_id)  # follow the new request
                return
            self._finish(job_id, "failed", error=str(exc), error_code=exc.code, cost_usd=_failed_cost(exc))
        except OutputLost as exc:
            self._finish(job_id, "failed", error=str(exc), error_code=exc.code,
                         cost_usd=self.get(job_id).estimate_usd)
        except ProviderError as exc:  # the job is still out there: keep it resumable, say what happened
            self.ledger.update(job_id, error=str(exc), error_code=exc.code)

    async def _submit(self, row: JobRow, provider: Provider) -> Handle | None:
        pending = self._payloads.pop(row.id, None)
        if pending is None:
            self._finish(row.id, "failed", error="The submit was interrupted before it was sent; nothing was charged. "
                                               "Call the tool again.", error_code="interrupted", cost_usd=0.0)
            return None
        payload, fresh = pending
        self._live.publish(row, "uploading inputs" if iter_inputs(payload) else "submitting")
        try:
            await upload_inputs(self.ledger, provider, payload, fresh=fresh)
        except AivpError as exc:
            self._finish(row.id, "failed", error=f"An input could not be uploaded, so nothing was submitted or "
                                                 f"charged: {exc}", error_code=exc.code, cost_usd=0.0)
            return None
        return await self._send(row, provider, map_inputs(payload, InputRef.wire), record_payload(payload),
                                expect=("pending",))

    async def _send(self, row: JobRow, provider: Provider, wire: dict[str, Any], record: dict[str, Any], *,
                    expect: tuple[str, ...]) -> Handle | None:
        """The submit itself: the ledger says 'submitting' first, so a crash from here on is never resent."""
        try:
            self.ledger.update(row.id, state="submitting", request=record, request_id=None, handle=None, result=None,
                               expect=expect)
        except StateChanged:  # cancelled meanwhile, or taken by another process: not ours to send
            return None
        try:
            handle = await provider.submit(row.endpoint, wire, shape=row.spec.shape)
        except SubmitUncertain as exc:
            self._mark_unknown(row.id, str(exc))
            self.settle_soon(row.id, self.settings.settle_after_s)  # once the provider's list has caught up
            return None
        except (ProviderError, AivpError) as exc:
            self._finish(row.id, "failed", error=f"{exc} Nothing was charged.", error_code=exc.code, cost_usd=0.0)
            return None
        self.ledger.update(row.id, state="queued", request_id=handle.request_id, handle=handle.to_json(),
                           submitted_at=now_iso())
        self._live.publish(self.get(row.id))
        return handle

    async def _resend_with_new_uploads(self, job_id: str, provider: Provider) -> bool:
        """The provider could not download an input aivp uploaded earlier (a link that expired, or one made on a
        sandbox): upload the files again and resubmit, once. True when the new request is on its way."""
        row = self.get(job_id)
        if not uploaded_files(row.request) or any(e["state"] == "reuploaded" for e in self.ledger.events(job_id)):
            return False
        try:
            wire, record = await reupload(self.ledger, provider, self.project, row.request)
        except AivpError as exc:
            log.info("job %s: cannot upload its inputs again (%s)", job_id, exc)
            return False
        note = (f"{row.provider} could not download an input aivp had uploaded before (the link was gone); aivp "
                "uploaded it again and resubmitted once. The refused attempt was not charged.")
        self.ledger.update(job_id, event="reuploaded", detail=f"after request {row.request_id}",
                           spec=row.spec.with_warnings([note]))
        return await self._send(self.get(job_id), provider, wire, record, expect=(row.state,)) is not None

    async def _follow(self, row: JobRow, provider: Provider) -> bool:
        """Follow the remote job to COMPLETED; True when it is ready to fetch."""
        assert row.handle is not None
        handle = Handle.from_json(row.handle)
        live = self._live.of(row.id)
        failures = 0
        while True:
            try:
                async for state in provider.watch(handle):
                    failures = 0
                    if isinstance(state, Queued):
                        row = self.ledger.update(row.id, state="queued", queue_position=state.position, error=None)
                    elif isinstance(state, Running):
                        live.logs.extend(m for m in state.logs if m not in live.logs)
                        values: dict[str, Any] = {"state": "running", "logs": list(live.logs), "error": None}
                        if row.started_at is None:
                            values["started_at"] = now_iso()
                        row = self.ledger.update(row.id, **values) if row.state != "running" else \
                            self.ledger.update(row.id, logs=list(live.logs))
                    elif isinstance(state, Completed):
                        live.logs.extend(m for m in state.logs if m not in live.logs)
                        self.ledger.update(row.id, state="fetching", logs=list(live.logs), queue_position=None)
                        return True
                    elif isinstance(state, Canceled):
                        raise JobCanceled(f"Request {handle.request_id} was cancelled at {row.provider}.")
                    self._live.publish(row)
                return True
            except ProviderError as exc:
                if isinstance(exc, ProviderHTTPError):
                    if _refused_for_good(exc, adopted=row.spec.mode == "EXTERNAL"):
                        raise JobFailed(
                            f"{row.provider} refused to say how request {handle.request_id} of {row.endpoint} is "
                            f"doing (HTTP {exc.status_code}: {exc}). It cannot be followed: check the model and the "
                            f"request id on {row.provider}'s dashboard ({provider.dashboard}).",
                            error_type="follow_refused") from None
                    if isinstance(exc, ProviderAuthError):
                        self.ledger.update(row.id, error=f"Stopped following: {exc}", error_code=exc.code)
                        return False
                failures += 1
                self.ledger.update(row.id, error=f"Lost contact with {row.provider} ({exc}); retrying.",
                                   error_code=exc.code)
                self._live.publish(self.get(row.id), f"lost contact with {row.provider}; retrying")
                await anyio.sleep(min(30.0, self.settings.poll_initial_s * 2 ** min(failures, 8)))

    # ---------------------------------------------------------------- state helpers

    async def _fetch(self, row: JobRow, provider: Provider) -> None:
        """Fetch the result, place its files and records, then make the one move to 'completed'."""
        if row.result is None:
            assert row.handle is not None
            answer = await provider.result(Handle.from_json(row.handle))
            row = self.ledger.update(row.id, result=answer.output, event="result", detail=None if
                                     answer.billable_units is None else f"billable_units={answer.billable_units:g}")
        result = row.result
        assert result is not None
        shape = row.spec.shape
        more = [w for w in provider.output_warnings(shape, result) if w not in row.spec.warnings]
        if more:  # e.g. one image of a set refused
            row = self.ledger.update(row.id, spec=row.spec.with_warnings(more))
        files = provider.outputs(shape, result)
        if not files:
            keys = ", ".join(sorted(result)) or "nothing"
            raise JobFailed(f"{row.provider} finished the job but returned no files (it returned: {keys}).")
        job_id = row.id

        def save(done: list[dict[str, Any]]) -> None:  # after each file: a restart never fetches it again
            self.ledger.update(job_id, outputs=done)

        fetcher = outputs.Fetcher(self.project, self.client, self.policy, save=save,
                                  progress=lambda m: self._live.publish(self.get(job_id), m))
        got = await outputs.fetch_outputs(fetcher, row, files)
        row = self.get(job_id)
        if outputs.has_inline(row.result) or outputs.has_inline(row.handle):  # the files are written: drop the bytes
            row = self.ledger.update(job_id, result=outputs.strip_inline(row.result),
                                     handle=outputs.strip_inline(row.handle))
        # Records first, then the state: a job is only 'completed' once everything it owes the project is written
        # (a full disk leaves it 'fetching', and queue_status tries again).
        finished = now_iso()
        plan = records.write_records(self.project, replace(row, outputs=got.outputs, state="completed",
                                                            cost_usd=got.cost_usd, finished_at=finished, error=None,
                                                            error_code=None))
        row = self.ledger.update(job_id, state="completed", cost_usd=got.cost_usd, finished_at=finished, error=None,
                                 error_code=None)
        records.write_plan_rows(self.project, row, plan)
        self._live.publish(row, "done")

    # ---------------------------------------------------------------- state helpers

    def _finish(self, job_id: str, state: str, **values: Any) -> JobRow:
        row = self.ledger.update(job_id, state=state, finished_at=now_iso(), queue_position=None, **values)
        records.write_plan_rows(self.project, row, records.target_rows(row))
        self._live.publish(row)
        return row

    def _unsaved(self, row: JobRow, exc: BaseException) -> None:
        """A paid result that could not be written into the project: a terminal state that says where it is."""
        provider = self.providers[row.provider]
        try:
            urls = [f.url for f in provider.outputs(row.spec.shape, row.result or {})]
        except Exception:  # the answer itself may be what broke
            urls = []
        shown = ", ".join(u if not u.startswith("data:") else "(inline data, kept in the ledger)" for u in urls[:4])
        where = f" The files are still at {row.provider} for a limited time: {shown}." if shown else ""
        self._finish(row.id, "unsaved", cost_usd=row.estimate_usd, error_code="save_failed", error=(
            f"aivp could not save the result of this paid job ({type(exc).__name__}: {exc}).{where} Fix the cause "
            f"and call queue_status(job_id='{row.id}') to save it again, or queue_status(job_id='{row.id}', "
            "output='<another project path>') to save it under another name. Nothing will be paid again."))

    async def settle(self, job_id: str) -> str:
        """Look an 'unknown' job up at its provider and settle it: see reconcile.Reconciler."""
        raise NotImplementedError

    def settle_soon(self, job_id: str, delay: float = 0.0) -> None:
        """Settle an 'unknown' job in the background after `delay` seconds (a lookup never fails the server)."""
        async def run() -> None:
            await anyio.sleep(delay)
            try:
                log.info("job %s: %s", job_id, await self.settle(job_id))
            except Exception:
                log.exception("job %s: looking up the lost submit failed", job_id)

        if self._tg is not None:
            self._tg.start_soon(run)

    def _mark_unknown(self, job_id: str, why: str) -> None:
        row = self.get(job_id)
        self._finish(job_id, "unknown", error_code="submit_uncertain", error=(
            f"{why.rstrip('.')}. The provider may have accepted the job, so aivp did not submit it again (that could "
            f"charge twice). Check {dashboard(self.providers.get(row.provider))}; if it is not there, call the tool "
            "again with fresh=true."))



def dashboard(provider: Provider | None) -> str:
    """Where a person can look for a job at its provider."""
    return provider.dashboard if provider is not None else spec_for("fal").dashboard


def _refused_for_good(exc: ProviderHTTPError, *, adopted: bool) -> bool:
    """A 4xx answer while following a job that no retry will change: the request is not (or no longer) ours
    to read. A wrong key (401), throttling and conflicts are not final; a 403 is final only for a request
    made outside aivp (for our own jobs it means the key or the account, which someone can fix)."""
    status = exc.status_code
    if not 400 <= status < 500 or status in (401, 408, 409, 429):
        return False
    return adopted or status != 403


def _failed_cost(exc: JobFailed) -> float | None:
    """What a failed job cost: a safety refusal is not billed; for other failures the provider may have
    billed compute, so the cost is unknown (None), not zero."""
    return 0.0 if exc.code == "safety_refusal" else None

