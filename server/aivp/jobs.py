"""The job runner: the only writer of job state.

For every generation: a ledger row first (idempotency key = provider + endpoint + canonical
input + output target), then uploads and the submit, then following the job (SSE or polling),
fetching its result and writing the files (see `outputs.py`). Jobs run in the server's task
group, not in the tool call that started them: a caller waits at most `wait_s` and gets a handle,
and a client that cancels its call only detaches. On start-up every unfinished job in the ledger
is picked up again without a second submit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup

from .catalog.params import Built
from .catalog.pricing import Estimate
from .errors import (
    AivpError,
    BudgetExceeded,
    JobCanceled,
    JobFailed,
    JobNotFound,
    OutputLost,
    ProviderAuthError,
    ProviderError,
    SubmitUncertain,
)
from .inputs import InputRef, iter_inputs, map_inputs
from .ledger import ACTIVE_STATES, JobRow, Ledger, StateChanged, now_iso
from .project import Project
from .providers.base import Canceled, Completed, Handle, Provider, Queued, Running
from .providers.http import RetryPolicy
from .settings import Settings

log = logging.getLogger("aivp.jobs")
UPLOAD_CACHE_S = 6 * 24 * 3600
HEARTBEAT_S = 5.0  # a server process says it is alive this often
STALE_S = 30.0  # a job whose owner has been silent this long is taken over by another process
HOST = socket.gethostname()
_LIVE_OWNERS: set[str] = set()  # owners of runners alive in this process (tests run several in turn)


def owner_dead(owner: str) -> bool:
    """Whether the process behind an owner id is gone (checked on this host; elsewhere the heartbeat decides)."""
    host, _, rest = owner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _LIVE_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class JobRequest:
    """Everything a tool hands the runner to start one generation."""

    tool: str
    built: Built
    kind: str  # "image" | "video": where outputs and records go
    mode: str  # T2I, I2I, EDIT, INPAINT, UPSCALE, T2V, I2V, FLF, R2V, V2V
    prompt: str | None
    estimate: Estimate
    targets: list[str] | None = None  # explicit output paths; None: image|video/generated/
    overwrite: bool = False
    fresh: bool = False
    record_type: str = "image"
    plan_type: str | None = None  # row "Type" in plan.md; None: no plan row
    extra: dict[str, Any] = field(default_factory=dict)  # more record fields (character_refs ...)
    budget_usd: float | None = None  # the cap for this project (AIVP_BUDGET_USD, else aivp.toml)

    @property
    def provider(self) -> str:
        return self.built.route.provider

    def idem_key(self) -> str:
        canonical = {
            "provider": self.provider,
            "endpoint": self.built.route.endpoint,
            "input": map_inputs(self.built.payload, lambda r: r.canonical),
            "targets": self.targets,
            "overwrite": self.overwrite,
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Progress:
    """One progress event of a job, forwarded to MCP progress notifications."""

    job_id: str
    state: str
    elapsed_s: float
    message: str
    terminal: bool = False


@dataclass
class _Live:
    started: float = field(default_factory=time.monotonic)
    done: anyio.Event = field(default_factory=anyio.Event)
    subscribers: set[Any] = field(default_factory=set)
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    driving: bool = False
    scope: anyio.CancelScope | None = None


@dataclass(frozen=True)
class Started:
    row: JobRow
    created: bool  # False: an identical job was reused (completed) or joined (in flight)


class JobRunner:
    """Owns every job of one project for the life of the server."""

    def __init__(self, settings: Settings, ledger: Ledger, project: Project,
                 providers: dict[str, Provider], client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.ledger = ledger
        self.project = project
        self.providers = providers
        self.client = client
        self._tg: TaskGroup | None = None
        self._live: dict[str, _Live] = {}
        self._payloads: dict[str, dict[str, Any]] = {}
        # Only the local work (downloads, checks) is bounded: submits queue at the provider, not here.
        self._downloads = anyio.Semaphore(settings.max_parallel_downloads)
        self.policy = RetryPolicy(settings.retry_attempts, settings.retry_base_s, settings.retry_cap_s)
        # Several server processes may share a project (a desktop client and a CLI run): each job is driven by
        # one owner at a time, and only a dead or silent owner's jobs are taken over.
        self.owner = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"

    # ---------------------------------------------------------------- life cycle

    async def run(self, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled (server shutdown); unfinished jobs stay in the ledger for next time."""
        _LIVE_OWNERS.add(self.owner)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self.resume()
                tg.start_soon(self._heartbeat)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            _LIVE_OWNERS.discard(self.owner)
            self.ledger.release(self.owner)

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(HEARTBEAT_S)
            self.ledger.heartbeat(self.owner)

    def _claim(self, job_id: str) -> bool:
        return self.ledger.claim(job_id, self.owner, stale_before=time.time() - STALE_S, dead=owner_dead)

    def resume(self) -> None:
        for row in self.ledger.unfinished():
            if not self._claim(row.id):
                continue  # another live server process is driving it
            if row.state == "pending":
                self.ledger.update(row.id, state="failed", error_code="interrupted", cost_usd=0.0, finished_at=now_iso(),
                                   error="The server stopped before this job was submitted; nothing was sent or "
                                         "charged. Call the tool again.")
            elif row.state == "submitting":
                self._mark_unknown(row.id, "The server stopped while the submit was in flight")
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

    def _spawn(self, job_id: str) -> bool:
        """Drive the job in this process if no other live process does; True when this process drives it."""
        live = self._live.setdefault(job_id, _Live())
        if live.driving:
            return True
        if self._tg is None or not self._claim(job_id):
            return False
        live.driving = True
        self._tg.start_soon(self._drive, job_id)
        return True

    # ---------------------------------------------------------------- starting and waiting

    async def start(self, req: JobRequest) -> Started:
        """Create the job (or find the identical one), then run it in the background."""
        outputs_exist = self._outputs_exist

        def reuse(rows: list[JobRow]) -> JobRow | None:
            if req.fresh:
                return None
            for r in rows:
                if r.state in ACTIVE_STATES or (r.state == "completed" and outputs_exist(r)):
                    return r
                if r.state == "unknown":  # the same request may already be running (and billed) at the provider
                    raise SubmitUncertain(
                        f"An identical request (job {r.id}) was sent but its answer was lost, so it may be running "
                        f"at {r.provider} already. Check {dashboard(self.providers.get(r.provider))}; to submit it "
                        "again anyway, call with fresh=true."
                    )
            return None

        budget = req.budget_usd if req.budget_usd is not None else self.settings.budget_usd

        def within_budget() -> None:
            if budget is None:
                return
            spend = self.ledger.spend()
            total = spend["spent_usd"] + spend["committed_usd"] + req.estimate.usd
            if total > budget + 1e-9:
                raise BudgetExceeded(
                    f"This call would cost about ${req.estimate.usd:.2f}; with ${spend['spent_usd']:.2f} spent and "
                    f"${spend['committed_usd']:.2f} in running jobs it would pass the ${budget:.2f} "
                    "budget (AIVP_BUDGET_USD or aivp.toml). Nothing was sent. Raise the budget or pick a cheaper model."
                )

        b = req.built
        refs = iter_inputs(b.payload)
        spec = {
            "kind": req.kind, "mode": req.mode, "shape": b.endpoint.output, "prompt": req.prompt,
            "targets": req.targets, "overwrite": req.overwrite, "record_type": req.record_type,
            "plan_type": req.plan_type, "model": b.model.id, "model_name": b.model.name,
            "estimate": req.estimate.as_dict(), "warnings": b.warnings, "extra": req.extra,
            "effective": record_payload(b.effective), "inputs": [r.record() for r in refs],
        }
        row, created = self.ledger.insert(
            idem_key=req.idem_key(), tool=req.tool, model_id=b.model.id, provider=req.provider,
            endpoint=b.route.endpoint, task=b.endpoint.task, request=record_payload(b.payload), spec=spec,
            estimate_usd=round(req.estimate.usd, 6), reuse=reuse, guard=within_budget, owner=self.owner,
        )
        if created:
            self._payloads[row.id] = b.payload
            self._spawn(row.id)
        elif row.active:
            self._spawn(row.id)  # a job left by another server process or a stalled follow
        return Started(row, created)

    def adopt(self, provider: str, endpoint: str, request_id: str, *, model_id: str, task: str, kind: str,
              shape: str) -> Started:
        """Follow a request submitted outside aivp (by id) and download its result like any job."""
        existing = self.ledger.find_request(provider, request_id)
        if existing is not None:
            if existing.active:
                self._spawn(existing.id)
            return Started(existing, False)
        handle = self.providers[provider].handle_for(endpoint, request_id)
        spec = {"kind": kind, "mode": "EXTERNAL", "shape": shape, "prompt": None, "targets": None, "overwrite": False,
                "record_type": "external", "plan_type": None, "model": model_id, "estimate": None,
                "warnings": ["Submitted outside aivp: its input and cost are not known here."], "extra": {},
                "effective": {}, "inputs": []}
        row, _ = self.ledger.insert(idem_key=f"adopt:{provider}:{endpoint}:{request_id}", tool="queue_status",
                                    model_id=model_id, provider=provider, endpoint=endpoint, task=task, request={},
                                    spec=spec, estimate_usd=0.0, owner=self.owner)
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
        live = self._live.setdefault(job_id, _Live())
        send, receive = anyio.create_memory_object_stream[Progress](64)
        live.subscribers.add(send)
        try:
            with anyio.move_on_after(max(0.0, timeout)):
                if on_progress is not None:
                    await on_progress(self._progress(self.get(job_id)))
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
                                await on_progress(self._progress(row, f"{describe_state(row)} (another aivp process)"))
        finally:
            live.subscribers.discard(send)
            send.close()
        return self.get(job_id)

    def get(self, job_id: str) -> JobRow:
        row = self.ledger.get(job_id.strip())
        if row is None:
            raise JobNotFound(f"No job {job_id!r} in this project's ledger; call queue_status() to list recent jobs.")
        return row

    async def cancel(self, job_id: str) -> tuple[JobRow, str]:
        """Cancel at the provider. Returns the row and what happened, in words."""
        row = self.get(job_id)
        if not row.active:
            return row, f"The job had already ended ({row.state}); nothing to cancel."
        if row.state == "pending":
            live = self._live.get(job_id)
            if live and live.scope:
                live.scope.cancel()
            row = self._finish(job_id, "canceled", error="Cancelled before it was submitted; nothing was charged.",
                               cost_usd=0.0)
            return row, "Cancelled before it was submitted; nothing was charged."
        with anyio.move_on_after(10):  # a submit in flight: wait for its request id
            while (row := self.get(job_id)).state == "submitting":
                await anyio.sleep(0.05)
        if row.handle is None:
            return row, f"The job is {row.state}; there is no remote request to cancel."
        provider = self.providers[row.provider]
        accepted = await provider.cancel(Handle.from_json(row.handle))
        self.ledger.update(job_id, event="cancel_requested", detail="accepted" if accepted else "already completed")
        if not accepted:
            return row, "The provider had already finished the job; its result is being fetched."
        self._spawn(job_id)
        row = await self.wait(job_id, 5.0)
        note = ("Cancelled at the provider." if row.state == "canceled" else
                "The provider accepted the cancel; a job that was already running may still finish and be billed.")
        return row, note

    # ---------------------------------------------------------------- driving one job

    async def _drive(self, job_id: str) -> None:
        live = self._live.setdefault(job_id, _Live())
        try:
            with anyio.CancelScope() as scope:
                live.scope = scope
                await self._drive_once(job_id)
        except Exception as exc:  # a bug or a full disk must not kill the server; the paid job stays resumable
            log.exception("job %s: unexpected error", job_id)
            self.ledger.update(job_id, error_code="save_failed", error=(
                f"aivp could not finish this job ({type(exc).__name__}: {exc}). It is kept with its result at the "
                f"provider: fix the cause, then call queue_status(job_id='{job_id}') to try again."))
        finally:
            live.driving = False
            live.scope = None
            row = self.ledger.get(job_id)
            if row is not None:  # waiters return now, also when the job stopped short of an end
                self._publish(row, stopped=True)

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
                from .outputs import fetch_outputs

                async with self._downloads:
                    await fetch_outputs(self, row, provider)
        except JobCanceled as exc:
            self._finish(job_id, "canceled", error=str(exc), cost_usd=0.0)
        except JobNotFound as exc:  # the provider forgot the request (expired): nothing more to follow
            self._finish(job_id, "failed", error=f"{exc} The job cannot be followed any more.", error_code=exc.code)
        except JobFailed as exc:
            self._finish(job_id, "failed", error=str(exc), error_code=exc.code, cost_usd=_failed_cost(exc))
        except OutputLost as exc:
            self._finish(job_id, "failed", error=str(exc), error_code=exc.code,
                         cost_usd=self.get(job_id).estimate_usd)
        except ProviderError as exc:  # the job is still out there: keep it resumable, say what happened
            self.ledger.update(job_id, error=str(exc), error_code=exc.code)

    async def _submit(self, row: JobRow, provider: Provider) -> Handle | None:
        payload = self._payloads.pop(row.id, None)
        if payload is None:
            self._finish(row.id, "failed", error="The submit was interrupted before it was sent; nothing was charged. "
                                               "Call the tool again.", error_code="interrupted", cost_usd=0.0)
            return None
        self._publish(row, "uploading inputs" if iter_inputs(payload) else "submitting")
        try:
            await self._upload_inputs(provider, payload)
        except AivpError as exc:
            self._finish(row.id, "failed", error=f"An input could not be uploaded, so nothing was submitted or "
                                                 f"charged: {exc}", error_code=exc.code, cost_usd=0.0)
            return None
        try:
            self.ledger.update(row.id, state="submitting", request=record_payload(payload), expect=("pending",))
        except StateChanged:  # cancelled meanwhile, or taken by another process: not ours to send
            return None
        try:
            handle = await provider.submit(row.endpoint, map_inputs(payload, InputRef.wire))
        except SubmitUncertain as exc:
            self._mark_unknown(row.id, str(exc))
            return None
        except (ProviderError, AivpError) as exc:
            self._finish(row.id, "failed", error=f"{exc} Nothing was charged.", error_code=exc.code, cost_usd=0.0)
            return None
        self.ledger.update(row.id, state="queued", request_id=handle.request_id, handle=handle.to_json(),
                           submitted_at=now_iso())
        self._publish(self.get(row.id))
        return handle

    async def _upload_inputs(self, provider: Provider, payload: dict[str, Any]) -> None:
        for ref in iter_inputs(payload):
            if ref.kind != "path" or ref.url:
                continue
            assert ref.path is not None and ref.sha256 is not None
            cached = self.ledger.cached_upload(ref.sha256, provider.name, upload_ttl(provider))
            if cached:
                ref.url = cached
                continue
            ref.url = await provider.upload(ref.path, ref.mime or "application/octet-stream")
            if not ref.url.startswith("data:"):  # inline "uploads" are not worth caching in the ledger
                self.ledger.remember_upload(ref.sha256, provider.name, ref.url, ref.size or 0)

    async def _follow(self, row: JobRow, provider: Provider) -> bool:
        """Follow the remote job to COMPLETED; True when it is ready to fetch."""
        assert row.handle is not None
        handle = Handle.from_json(row.handle)
        live = self._live.setdefault(row.id, _Live())
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
                    self._publish(row)
                return True
            except ProviderAuthError as exc:
                self.ledger.update(row.id, error=f"Stopped following: {exc}", error_code=exc.code)
                return False
            except ProviderError as exc:
                failures += 1
                self.ledger.update(row.id, error=f"Lost contact with {row.provider} ({exc}); retrying.",
                                   error_code=exc.code)
                self._publish(self.get(row.id), f"lost contact with {row.provider}; retrying")
                await anyio.sleep(min(30.0, self.settings.poll_initial_s * 2 ** min(failures, 8)))

    # ---------------------------------------------------------------- state helpers

    def _finish(self, job_id: str, state: str, **values: Any) -> JobRow:
        row = self.ledger.update(job_id, state=state, finished_at=now_iso(), queue_position=None, **values)
        self._mark_plan(row)
        self._publish(row)
        return row

    def _mark_plan(self, row: JobRow) -> None:
        """A job that ends without files still shows in plan.md (failed, canceled, unknown) for its target."""
        from .outputs import _in_convention_folder, plan_row

        spec = row.spec
        for target in spec.get("targets") or []:
            if spec.get("plan_type") or _in_convention_folder(target):
                plan_row(self.project, spec.get("kind", "image"), target, type_=spec.get("plan_type") or
                         target.rsplit("/", 1)[-1].rsplit(".", 1)[0], model=row.endpoint, mode=spec.get("mode", "-"),
                         status=row.state)

    def _mark_unknown(self, job_id: str, why: str) -> None:
        row = self.get(job_id)
        self._finish(job_id, "unknown", error_code="submit_uncertain", error=(
            f"{why.rstrip('.')}. The provider may have accepted the job, so aivp did not submit it again (that could "
            f"charge twice). Check {dashboard(self.providers.get(row.provider))}; if it is not there, call the tool "
            "again with fresh=true."))

    def _outputs_exist(self, row: JobRow) -> bool:
        """The job's files are still there and still its own (not replaced by another job's output)."""
        if not row.outputs:
            return False
        return all(self._unchanged(o) for o in row.outputs)

    def _unchanged(self, out: dict[str, Any]) -> bool:
        path = self.project.root / out["path"]
        try:
            st = path.stat()
        except OSError:
            return False
        if "mtime_ns" not in out:  # recorded before aivp kept these: the name is all there is
            return path.is_file()
        if st.st_mtime_ns == out["mtime_ns"] and st.st_size == out.get("file_bytes"):
            return True
        want = out.get("file_sha256") or out.get("sha256")
        if st.st_size != out.get("file_bytes") or not want:
            return False
        from .inputs import file_sha256

        return file_sha256(path) == want  # touched but maybe the same bytes (a copy, a restore)

    def _progress(self, row: JobRow, message: str | None = None, stopped: bool = False) -> Progress:
        live = self._live.get(row.id)
        elapsed = time.monotonic() - live.started if live else 0.0
        return Progress(row.id, row.state, elapsed, message or describe_state(row), terminal=stopped or not row.active)

    def _publish(self, row: JobRow, message: str | None = None, stopped: bool = False) -> None:
        live = self._live.setdefault(row.id, _Live())
        event = self._progress(row, message, stopped)
        for s in list(live.subscribers):
            try:
                s.send_nowait(event)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
        if not row.active:
            live.done.set()
            if not live.subscribers and not live.driving:
                self._live.pop(row.id, None)  # nothing waits on a finished job: keep memory flat

    def publish(self, row: JobRow, message: str) -> None:
        """For outputs.py: progress while downloading."""
        self._publish(row, message)


def upload_ttl(provider: Provider) -> float:
    """How long an uploaded file's URL may be reused: the provider says (Replicate's files expire in a day)."""
    return float(getattr(provider, "upload_ttl_s", UPLOAD_CACHE_S))


def dashboard(provider: Provider | None) -> str:
    """Where a person can look for a job at its provider."""
    return str(getattr(provider, "dashboard", None) or "https://fal.ai/dashboard/requests")


def describe_state(row: JobRow) -> str:
    if row.state == "queued":
        pos = f" (position {row.queue_position})" if row.queue_position is not None else ""
        return f"queued at {row.provider}{pos}"
    if row.state == "running":
        last = f": {row.logs[-1]}" if row.logs else ""
        return f"running at {row.provider}{last}"
    return {"pending": "preparing", "submitting": "submitting", "fetching": "downloading the result",
            "completed": "done", "failed": "failed", "canceled": "cancelled",
            "unknown": "submit outcome unknown"}.get(row.state, row.state)


def record_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload safe for the ledger and records: inputs become their record form (no data: bodies)."""
    out = map_inputs(payload, lambda r: r.record())
    return json.loads(json.dumps(out, default=str))


def _failed_cost(exc: JobFailed) -> float | None:
    """What a failed job cost: a safety refusal is not billed; for other failures the provider may have
    billed compute, so the cost is unknown (None), not zero."""
    return 0.0 if exc.code == "safety_refusal" else None


__all__ = ["JobRequest", "JobRunner", "Progress", "Started", "describe_state"]
