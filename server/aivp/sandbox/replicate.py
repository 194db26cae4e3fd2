"""Replicate's HTTP API (provider-protocols 5, checklist 5.9), under ``{url}/replicate``.

Predictions run on the shared job engine and show its phases in Replicate's words: queued is
``starting``, running is ``processing`` (with a growing ``logs`` string) and the end is ``succeeded``,
``failed`` or ``canceled`` (``aborted`` when a ``Cancel-After`` deadline passes before the run starts).
Unlike fal, the input is checked at create: a bad one is a 422 problem+json with ``invalid_fields``.
``Prefer: wait=N`` holds the create until the prediction ends or N seconds pass, then answers
``starting`` if it is not done (even when it is already processing, as Replicate does).

Failures in Replicate's words: ``[sandbox:unsafe]`` / ``[sandbox:unsafe-image]`` fail with the E005
"flagged as sensitive" message, ``[sandbox:interrupted]`` (or ``[sandbox:error=503]``) with the transient
PA message, other ``[sandbox:error=N]`` with a Director error. Outputs are a URL string or a list by the
catalog endpoint's output shape, served from ``/replicate/delivery/`` (expiring like every output).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import jobs
from .fal_storage import serve_file
from .faults import guarded
from .state import Submission
from .storage import safe_name
from .validate import spec_for, validate

if TYPE_CHECKING:
    from starlette.requests import Request

    from .state import SandboxState

LIST_PAGE = 2  # small, so clients must follow `next`
ROUTE_NAMES = ("replicate_create", "replicate_get", "replicate_list", "replicate_cancel", "replicate_files",
               "replicate_delivery", "replicate_models")
HEX64 = re.compile(r"^(?:[\w.-]+/[\w.-]+:)?([0-9a-f]{64})$")
_ID_CHARS = "0123456789abcdefghjkmnpqrstvwxyz"
INPUTS = "_sandbox_input_urls"  # the engine finds inputs by fal's *_urls naming; Replicate names them freely
E005 = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
PA = "Prediction interrupted; please retry (code: PA)"
DIRECTOR = "Director: unexpected error handling prediction (E9828)"
FILE_TTL_S = 24 * 3600


def problem(status: int, detail: str, title: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "status": status, **extra}
    if title:
        body["title"] = title
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def check_token(state: SandboxState, request: Request) -> Response | None:
    """401 unless the request carries ``Authorization: Bearer <t>`` (or the older ``Token <t>``)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() not in ("bearer", "token") or not token or (state.keys is not None and token not in state.keys):
        return problem(401, "You did not pass a valid authentication token", "Unauthenticated")
    return None


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _wall(mono: float | None) -> float | None:
    return None if mono is None else time.time() - (time.monotonic() - mono)


class Book:
    """What this module remembers beside the engine's jobs: uploaded files and aborted predictions."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.aborted: set[str] = set()


def status_of(job: jobs.Job, book: Book) -> str:
    if job.phase == jobs.QUEUED:
        return "canceled" if job.cancel_requested else "starting"
    if job.phase == jobs.RUNNING:
        return "canceled" if job.cancel_requested else "processing"
    if job.failure is jobs.CANCELLED:
        return "aborted" if job.request_id in book.aborted else "canceled"
    return "failed" if job.failure is not None else "succeeded"


def error_of(job: jobs.Job) -> str | None:
    f = job.failure
    if f is None or f is jobs.CANCELLED:
        return None
    if f.error_type == "content_policy_violation":
        return E005
    if f.status == 503:
        return PA
    if f.error_type == "file_download_error" and f.detail:
        return f"Failed to download an input file: {f.detail[0].get('input')}"
    return DIRECTOR


def prediction(state: SandboxState, job: jobs.Job, book: Book, *, status: str | None = None) -> dict[str, Any]:
    """The prediction object, as GET /v1/predictions/{id} shows it now."""
    status = status or status_of(job, book)
    lines = [e["message"] for e in job.logs]
    if job.seed is not None and job.started is not None:
        lines.insert(1 if lines else 0, f"Using seed: {job.seed}")
    output: Any = None
    expired = False
    if status == "succeeded":
        urls = [f"{state.base_url}/replicate/delivery/{quote(f.key)}" for f, _, _ in job.files]
        ttl = state.config.output_ttl_s
        expired = ttl is not None and bool(job.files) and time.time() >= job.files[0][0].created + ttl
        output = None if expired else (urls[0] if job.spec.output in ("image", "video") and urls else urls)
    done = job.done or status in ("canceled", "aborted")
    metrics: dict[str, Any] = {}
    if job.done and job.inference_time is not None:
        metrics = {"predict_time": job.inference_time, "total_time": round((job.finished or 0) - job.submitted, 3)}
    base = job.urls["get"]
    return {
        "id": job.request_id, "model": job.endpoint if "/" in job.endpoint else "", "version": job.app or "official",
        "input": {k: v for k, v in job.payload.items() if k != INPUTS}, "output": output,
        "logs": "\n".join(lines), "error": error_of(job) if status == "failed" else None, "status": status,
        "data_removed": expired, "source": "api", "created_at": _iso(_wall(job.submitted)),
        "started_at": _iso(_wall(job.started)), "completed_at": _iso(_wall(job.finished)) if done else None,
        "metrics": metrics,
        "urls": {"get": base, "cancel": f"{base}/cancel", "web": f"{state.base_url}/replicate/p/{job.request_id}"},
    }


def invalid_fields(entries: list[dict[str, Any]]) -> JSONResponse:
    fields = []
    for e in entries:
        loc = [str(x) for x in e.get("loc", []) if x != "body"]
        fields.append({"type": e.get("type", "invalid"), "field": ".".join(["input", *loc]),
                       "description": str(e.get("msg"))})
    detail = "".join(f"- {f['field']}: {f['description']}\n" for f in fields)
    return problem(422, detail, "Input validation failed", invalid_fields=fields)


def _input_urls(value: Any) -> list[str]:
    """Every string in the input that names a file, at any depth."""
    if isinstance(value, str):
        return [value] if value.lower().startswith(("http://", "https://", "data:")) else []
    if isinstance(value, list):
        return [u for v in value for u in _input_urls(v)]
    if isinstance(value, dict):
        return [u for v in value.values() for u in _input_urls(v)]
    return []


def _prefer_wait(header: str) -> int | None | str:
    """Seconds from ``Prefer: wait[=N]``: None without it, "bad" for an N outside 1-60."""
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "wait":
            if not value:
                return 60
            return int(value) if value.strip().isdigit() and 1 <= int(value) <= 60 else "bad"
    return None


def _duration(text: str) -> float | None:
    m = re.fullmatch(r"\s*(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?\s*", text or "")
    if not m or not any(m.groups()):
        return None
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def routes(state: SandboxState) -> list[Route]:
    """The Replicate routes, to be mounted at ``/replicate``."""
    book = Book()

    def _job(request: Request) -> jobs.Job | None:
        job = state.jobs.get(request.path_params["pid"])
        return job if job is not None and job.provider == "replicate" else None

    def _abort(job: jobs.Job) -> None:
        if not job.done and not job.cancel_requested:
            if job.started is None:
                book.aborted.add(job.request_id)
            job.cancel_requested = True

    async def _create(request: Request, endpoint: str, version: str = "") -> Response:
        if denied := check_token(state, request):
            return denied
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return problem(400, "The request body is not valid JSON.", "Bad request")
        inp = body.get("input") if isinstance(body, dict) else None
        if not isinstance(inp, dict):
            return invalid_fields([{"loc": [], "type": "required", "msg": "input is required and must be an object"}])
        wait = _prefer_wait(request.headers.get("prefer", ""))
        if wait == "bad":
            return problem(400, "Prefer: wait takes a number of seconds from 1 to 60.", "Invalid Prefer header")
        spec = spec_for(endpoint, "replicate")
        if errors := validate(spec, inp):
            return invalid_fields(errors)
        pid = "".join(secrets.choice(_ID_CHARS) for _ in range(26))
        urls = {"get": f"{state.base_url}/replicate/v1/predictions/{pid}"}
        headers = {k.lower(): v for k, v in request.headers.items()}
        view = {**inp, INPUTS: _input_urls(inp)}
        job = jobs.new_job(state, provider="replicate", endpoint=endpoint, payload=view, headers=headers,
                           request_id=pid, urls=urls, app=version)
        if "[sandbox:interrupted]" in json.dumps(inp).lower():
            job.directives.error = 503
        state.record_submission(Submission(endpoint, pid, inp, headers, dict(request.query_params), time.time(),
                                           provider="replicate"))
        jobs.start(state, job)
        if (after := _duration(request.headers.get("cancel-after", ""))) is not None:
            asyncio.get_running_loop().call_later(max(5.0, after), _abort, job)
        out_headers = {"ratelimit-remaining": "599", "ratelimit-reset": "1"}
        status = None
        if isinstance(wait, int):
            out_headers["preference-applied"] = f"wait={wait}"
            deadline = time.monotonic() + wait
            while not job.done and time.monotonic() < deadline and not await request.is_disconnected():
                await asyncio.sleep(jobs.TICK)
            status = None if job.done else "starting"  # an unfinished waited create says starting
        return JSONResponse(prediction(state, job, book, status=status), status_code=201, headers=out_headers)

    async def create_model(request: Request) -> Response:
        p = request.path_params
        return await _create(request, f"{p['owner']}/{p['name']}")

    async def create_version(request: Request) -> Response:
        if denied := check_token(state, request):
            return denied
        try:
            version = str(json.loads(await request.body() or b"{}").get("version") or "")
        except (ValueError, AttributeError):
            version = ""
        m = HEX64.match(version)
        if not m:
            return problem(422, "The specified version does not exist (or perhaps you don't have permission to use "
                                "it?)", "Invalid version or not permitted")
        return await _create(request, m.group(1), m.group(1))

    async def get(request: Request) -> Response:
        if denied := check_token(state, request):
            return denied
        job = _job(request)
        if job is None:
            return problem(404, "The requested prediction was not found.", "Not found")
        return JSONResponse(prediction(state, job, book))

    async def list_(request: Request) -> Response:
        if denied := check_token(state, request):
            return denied
        mine = [j for j in state.jobs.values() if j.provider == "replicate"]
        mine.sort(key=lambda j: j.submitted, reverse=True)
        q = request.query_params
        for name, sign in (("created_after", 1), ("created_before", -1)):
            if q.get(name):
                try:
                    bound = datetime.fromisoformat(q[name].replace("Z", "+00:00")).timestamp()
                except ValueError:
                    return problem(400, f"{name} must be an ISO 8601 time.", "Bad request")
                mine = [j for j in mine if sign * ((_wall(j.submitted) or 0.0) - bound) >= 0]
        start = int(q.get("cursor") or 0)
        page = mine[start:start + LIST_PAGE]
        more = str(request.url.include_query_params(cursor=start + LIST_PAGE)) if start + LIST_PAGE < len(mine) else None
        return JSONResponse({"previous": None, "next": more, "results": [prediction(state, j, book) for j in page]})

    async def cancel(request: Request) -> Response:
        if denied := check_token(state, request):
            return denied
        job = _job(request)
        if job is None:
            return problem(404, "The requested prediction was not found.", "Not found")
        if job.done or state.config.cancel_ignored:  # after the end (or in race mode): the prediction, unchanged
            return JSONResponse(prediction(state, job, book))
        job.cancel_requested = True
        return JSONResponse(prediction(state, job, book, status="canceled"))

    async def files_create(request: Request) -> Response:
        if denied := check_token(state, request):
            return denied
        form = await request.form()
        content = form.get("content")
        if content is None or isinstance(content, str):
            return problem(400, "Send the file as multipart/form-data in the field 'content'.", "Bad request")
        data = await content.read()
        await form.close()
        if len(data) > 100 * 1024 * 1024:
            return problem(413, "Files may be at most 100 MB.", "File too large")
        fid = secrets.token_urlsafe(18).replace("-", "").replace("_", "")[:24]
        name = safe_name(content.filename, "file")
        ctype = content.content_type or "application/octet-stream"
        now = datetime.now(timezone.utc)
        state.store.put_bytes(data, name, ctype, key=f"files/{fid}", expires=time.time() + FILE_TTL_S)
        meta = {"id": fid, "name": name, "content_type": ctype, "size": len(data), "metadata": {},
                "etag": secrets.token_hex(16), "checksums": {}, "created_at": now.isoformat(),
                "expires_at": (now + timedelta(seconds=FILE_TTL_S)).isoformat(),
                "urls": {"get": f"{state.base_url}/replicate/v1/files/{fid}"}}
        book.files[fid] = meta
        return JSONResponse(meta, status_code=201)

    async def files_read(request: Request) -> Response:
        if denied := check_token(state, request):
            return denied
        if request.method == "GET" and "fid" not in request.path_params:
            return JSONResponse({"previous": None, "next": None, "results": list(book.files.values())})
        meta = book.files.get(request.path_params["fid"])
        if meta is None:
            return problem(404, "Not found.", "Not found")
        if request.method == "DELETE":
            book.files.pop(meta["id"], None)
            if (f := state.store.get(f"files/{meta['id']}")) is not None:
                f.expires = time.time()
            return Response(status_code=204)
        return JSONResponse(meta)

    async def model_read(request: Request) -> Response:
        """GET /v1/models/{owner}/{name}[/versions/{vid}]: the platform fixtures and the catalog's Replicate routes."""
        from .platform_docs import replicate_models

        if denied := check_token(state, request):
            return denied
        p = request.path_params
        model = replicate_models().get(f"{p['owner']}/{p['name']}")
        if model is None:
            return problem(404, "Not found.", "Not found")
        vid = p.get("vid")
        if vid is None:
            return JSONResponse(model)
        latest = model.get("latest_version") or {}
        if latest.get("id") != vid:
            return problem(404, "The specified version does not exist.", "Not found")
        return JSONResponse(latest)

    async def delivery(request: Request) -> Response:
        f = state.store.get(unquote(request.path_params["path"]).strip("/"))
        if f is None or not f.generated:
            return problem(404, "Not found.", "Not found")
        return serve_file(state, request, f)

    fault_name = {"create_model": "replicate_create", "create_version": "replicate_create", "get": "replicate_get",
                  "list": "replicate_list", "cancel": "replicate_cancel", "files_create": "replicate_files",
                  "files_read": "replicate_files", "delivery": "replicate_delivery", "models": "replicate_models"}
    h = {k: guarded(state, fault_name[k], fn) for k, fn in [
        ("create_model", create_model), ("create_version", create_version), ("get", get), ("list", list_),
        ("cancel", cancel), ("files_create", files_create), ("files_read", files_read), ("delivery", delivery),
        ("models", model_read)]}
    return [
        Route("/v1/models/{owner}/{name}", h["models"], methods=["GET"]),
        Route("/v1/models/{owner}/{name}/versions/{vid}", h["models"], methods=["GET"]),
        Route("/v1/models/{owner}/{name}/predictions", h["create_model"], methods=["POST"]),
        Route("/v1/deployments/{owner}/{name}/predictions", h["create_model"], methods=["POST"]),
        Route("/v1/predictions", h["create_version"], methods=["POST"]),
        Route("/v1/predictions", h["list"], methods=["GET"]),
        Route("/v1/predictions/{pid}", h["get"], methods=["GET"]),
        Route("/v1/predictions/{pid}/cancel", h["cancel"], methods=["POST"]),
        Route("/v1/files", h["files_create"], methods=["POST"]),
        Route("/v1/files", h["files_read"], methods=["GET"]),
        Route("/v1/files/{fid}", h["files_read"], methods=["GET", "DELETE"]),
        Route("/delivery/{path:path}", h["delivery"], methods=["GET", "HEAD"]),
    ]
