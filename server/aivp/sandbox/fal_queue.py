"""fal's queue API (provider-protocols 1.2-1.7, checklist 1.14), under ``{url}/fal/queue``.

Submit takes the full endpoint id; status, stream, result and cancel take only ``owner/alias``
(``ns/owner/alias`` for the workflows and comfy namespaces). A client that keeps the sub-path in
one of those URLs gets 405, as on the real gateway. Every answer uses only the three statuses
IN_QUEUE, IN_PROGRESS and COMPLETED; a failure is COMPLETED plus ``error``/``error_type``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, AsyncIterator
from urllib.parse import quote

from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import jobs
from .faults import guarded
from .state import Submission

if TYPE_CHECKING:
    from starlette.requests import Request

    from .state import SandboxState

ROUTE_NAMES = ("submit", "status", "stream", "result", "cancel")
NAMESPACES = ("workflows", "comfy")
PING_S = 0.5
_LEGACY = re.compile(r"^(\d+)-([a-zA-Z0-9-]+)$")  # "1234-my-app" -> 1234/my-app
_REQUEST_ROUTES = {  # (path after requests/{id}, method) -> route name
    ((), "GET"): "result",
    (("status",), "GET"): "status",
    (("status", "stream"), "GET"): "stream",
    (("cancel",), "PUT"): "cancel",
}
_STATUS = {jobs.QUEUED: "IN_QUEUE", jobs.RUNNING: "IN_PROGRESS", jobs.DONE: "COMPLETED"}


def _detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def check_key(state: SandboxState, request: Request) -> Response | None:
    """401 unless the request carries ``Authorization: Key <k>`` with an accepted key."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "key" or not key:
        return _detail(401, "Missing or invalid authorization header; send 'Authorization: Key <FAL_KEY>'.")
    if state.keys is not None and key not in state.keys:
        return _detail(401, "No user found for Key ID and Secret")
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def fal_files(state: SandboxState, job: jobs.Job) -> list[dict[str, Any]]:
    out = []
    sync = job.payload.get("sync_mode") is True
    for f, width, height in job.files:
        url = f"{state.base_url}/fal/cdn/{quote(f.key)}"
        if sync and f.path is not None:  # sync_mode: the file inline as a data URI, as fal does
            url = f"data:{f.content_type};base64," + base64.b64encode(f.path.read_bytes()).decode()
        entry: dict[str, Any] = {"url": url, "content_type": f.content_type, "file_name": f.name, "file_size": f.size}
        if width is not None and f.content_type.startswith("image/"):
            entry.update(width=width, height=height)
        out.append(entry)
    return out


def output_json(state: SandboxState, job: jobs.Job) -> dict[str, Any]:
    """The model output, shaped by the endpoint's catalog `output`."""
    files = fal_files(state, job)
    shape = job.spec.output
    body: dict[str, Any]
    if shape == "video":
        body = {"video": files[0]}
    elif shape == "image":
        body = {"image": files[0]}
    else:
        body = {"images": files}
    if job.seed is not None:
        body["seed"] = job.seed
    return body


def status_body(job: jobs.Job, logs: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"status": _STATUS[job.phase], "request_id": job.request_id, **job.urls}
    body["logs"] = [dict(e) for e in job.logs] if logs else None
    body["metrics"] = {}
    if job.phase == jobs.QUEUED:
        body["queue_position"] = job.queue_position
    if job.done:
        if job.inference_time is not None and job.failure is not jobs.CANCELLED:
            body["metrics"] = {"inference_time": job.inference_time}
        if job.failure is not None:
            body["error"] = job.failure.message
            body["error_type"] = job.failure.error_type
    return body


def failure_response(job: jobs.Job) -> Response:
    f = job.failure
    assert f is not None
    headers = {"x-fal-request-id": job.request_id}
    if f.detail is not None:  # model errors: a pydantic-style list, nothing billed
        headers["x-fal-billable-units"] = "0"
        return _detail(f.status, f.detail, headers)
    if f.status == 500:
        return _detail(500, "Internal Server Error", headers)
    headers["x-fal-error-type"] = f.error_type
    return JSONResponse({"detail": f.message, "error_type": f.error_type}, status_code=f.status, headers=headers)


def routes(state: SandboxState) -> list[Route]:
    """The queue routes, to be mounted at ``/fal/queue``."""

    def _job(request: Request) -> jobs.Job | None:
        app, request_id = request.scope["aivp.fal"]
        job = state.jobs.get(request_id)
        return job if job is not None and job.provider == "fal" and job.app == app else None

    async def submit(request: Request) -> Response:
        if denied := check_key(state, request):
            return denied
        endpoint, app = request.scope["aivp.fal"]
        try:
            payload = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            return _detail(422, [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error",
                                  "input": {}, "ctx": {"error": str(exc)}}])
        if not isinstance(payload, dict):
            return _detail(422, [{"type": "model_attributes_type", "loc": ["body"], "input": payload,
                                  "msg": "Input should be a valid dictionary or object to extract fields from"}])
        request_id = str(uuid.uuid4())
        base = f"{state.base_url}/fal/queue/{app}/requests/{request_id}"
        urls = {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}
        headers = {k.lower(): v for k, v in request.headers.items()}
        job = jobs.new_job(state, provider="fal", endpoint=endpoint, payload=payload, headers=headers,
                           request_id=request_id, urls=urls, app=app)
        query = dict(request.query_params)
        state.record_submission(Submission(endpoint, request_id, payload, headers, query, time.time()))
        jobs.start(state, job)
        body: dict[str, Any] = {"request_id": request_id, **urls, "status": "IN_QUEUE", "queue_position": job.queue_position,
                "logs": None, "metrics": {}}
        return JSONResponse(body, headers={"x-fal-request-id": request_id})

    async def status(request: Request) -> Response:
        if denied := check_key(state, request):
            return denied
        job = _job(request)
        if job is None:
            return _detail(404, "Request not found")
        body = status_body(job, _truthy(request.query_params.get("logs")))
        return JSONResponse(body, status_code=200 if job.done else 202, headers={"x-fal-request-id": job.request_id})

    async def stream(request: Request) -> Response:
        if denied := check_key(state, request):
            return denied
        job = _job(request)
        if job is None:
            return _detail(404, "Request not found")
        logs = _truthy(request.query_params.get("logs"))

        async def events() -> AsyncIterator[str]:
            last: dict[str, Any] | None = None
            quiet_since = time.monotonic()
            while True:
                body = status_body(job, logs)
                if body != last:  # a new phase, a new queue position or new log lines
                    yield f"data: {json.dumps(body)}\n\n"
                    last, quiet_since = body, time.monotonic()
                    if job.done:
                        return
                elif time.monotonic() - quiet_since >= PING_S:
                    yield ": ping\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(jobs.TICK)

        headers = {"cache-control": "no-cache", "x-fal-request-id": job.request_id}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def result(request: Request) -> Response:
        if denied := check_key(state, request):
            return denied
        job = _job(request)
        if job is None:
            return _detail(404, "Request not found")
        if not job.done:
            return _detail(400, "Request is still in progress", {"x-fal-request-id": job.request_id})
        if job.failure is not None:
            return failure_response(job)
        headers = {"x-fal-request-id": job.request_id, "x-fal-billable-units": f"{job.billable_units:g}"}
        return JSONResponse(output_json(state, job), headers=headers)

    async def cancel(request: Request) -> Response:
        if denied := check_key(state, request):
            return denied
        job = _job(request)
        if job is None:
            return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        if job.done:
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        if not state.config.cancel_ignored:  # race mode: accepted, but the job still completes
            job.cancel_requested = True
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    handlers = {name: guarded(state, name, fn) for name, fn in
                [("submit", submit), ("status", status), ("stream", stream), ("result", result), ("cancel", cancel)]}

    async def not_allowed(request: Request, why: str) -> Response:
        state.record_request("queue_other", request)
        return _detail(405, f"Method Not Allowed: {why}")

    async def dispatch(request: Request) -> Response:
        parts = [p for p in request.path_params["path"].split("/") if p]  # a trailing slash is fine
        if len(parts) == 1 and (m := _LEGACY.match(parts[0])):
            parts = [m.group(1), m.group(2)]
        n = 3 if parts and parts[0] in NAMESPACES else 2
        if len(parts) < n:
            state.record_request("queue_other", request)
            return _detail(404, "Application not found; an endpoint id is owner/alias[/path]")
        app = "/".join(parts[:n])
        if len(parts) >= n + 2 and parts[n] == "requests":
            request_id, rest = parts[n + 1], tuple(parts[n + 2 :])
            route = _REQUEST_ROUTES.get((rest, request.method))
            if route is None:
                return await not_allowed(request, f"{request.method} {'/'.join(rest) or 'result'}")
            request.scope["aivp.fal"] = (app, request_id)
            return await handlers[route](request)
        if "requests" in parts[n:]:
            # the real gateway answers 405 when a status/result URL keeps the endpoint's sub-path
            return await not_allowed(request, "request URLs use only owner/alias, without the endpoint sub-path")
        if request.method != "POST":
            return await not_allowed(request, "submit with POST")
        request.scope["aivp.fal"] = ("/".join(parts), app)
        return await handlers["submit"](request)

    return [Route("/{path:path}", dispatch, methods=["GET", "POST", "PUT"])]
