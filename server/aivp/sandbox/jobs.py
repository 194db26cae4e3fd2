"""The job engine shared by every provider the sandbox speaks: queue, run, render, finish.

A job walks queued -> running -> done, driven by the clock (`Config.queue_s`, `image_s`,
`video_s`) on the server's event loop. Providers only translate: fal shows the phases as
IN_QUEUE / IN_PROGRESS / COMPLETED and the failure as its own error shapes. Validation is lazy,
as on fal: a bad payload is accepted at submit and fails when the job starts running.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import anyio

from . import render
from .storage import StoredFile
from .validate import (
    Directives,
    Spec,
    directives,
    download_error,
    input_urls,
    role_values,
    safety_error,
    spec_for,
    validate,
)

if TYPE_CHECKING:
    from PIL.Image import Image

    from .state import SandboxState

QUEUED, RUNNING, DONE = "queued", "running", "done"
TICK = 0.02  # how often a job looks at the clock, its cancel flag and the stuck switch


@dataclass
class Failure:
    """Why a job failed: the HTTP status its result answers with, a type, and pydantic-style details."""

    status: int
    error_type: str
    message: str
    detail: list[dict[str, Any]] | None = None


CANCELLED = Failure(499, "client_cancelled", "Request cancelled")
ERRORS = {  # [sandbox:error=N]
    500: Failure(500, "runner_server_error", "Internal Server Error"),
    502: Failure(502, "runner_incomplete_response", "Runner returned an incomplete response"),
    503: Failure(503, "runner_connection_error", "Runner connection error"),
    504: Failure(504, "request_timeout", "Request timed out"),
}


@dataclass
class Job:
    """One submitted request and everything that happened to it."""

    request_id: str
    provider: str
    endpoint: str
    spec: Spec
    payload: dict[str, Any]
    headers: dict[str, str]
    urls: dict[str, str]
    queue_s: float
    run_s: float
    queue_depth: int
    directives: Directives
    app: str = ""  # the URL prefix the provider files this job under (fal: owner/alias)
    submitted: float = field(default_factory=time.monotonic)
    phase: str = QUEUED
    queue_position: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    files: list[tuple[StoredFile, int | None, int | None]] = field(default_factory=list)  # file, width, height
    seed: int | None = None
    failure: Failure | None = None
    cancel_requested: bool = False
    billable_units: float = 0

    @property
    def done(self) -> bool:
        return self.phase == DONE

    @property
    def inference_time(self) -> float | None:
        if self.started is None:
            return None
        return round((self.finished or time.monotonic()) - self.started, 3)

    def log(self, message: str, level: str = "INFO") -> None:
        self.logs.append({
            "message": message,
            "level": level,
            "source": "USER",
            "timestamp": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(),
            "labels": {},
        })


def new_job(state: SandboxState, *, provider: str, endpoint: str, payload: dict[str, Any], headers: dict[str, str],
            request_id: str, urls: dict[str, str], app: str) -> Job:
    spec = spec_for(endpoint, provider)
    d = directives(payload)
    cfg = state.config
    run_s = cfg.video_s if spec.output == "video" else cfg.image_s
    job = Job(
        request_id, provider, endpoint, spec, payload, headers, urls,
        queue_s=d.queue if d.queue is not None else cfg.queue_s,
        run_s=d.slow if d.slow is not None else run_s,
        queue_depth=cfg.queue_depth, directives=d, app=app, queue_position=cfg.queue_depth,
    )
    state.jobs[request_id] = job
    return job


def start(state: SandboxState, job: Job) -> None:
    """Run the job on the current event loop."""
    state.track(asyncio.get_running_loop().create_task(drive(state, job)))


def _finish(job: Job, failure: Failure | None = None) -> None:
    job.failure = failure
    job.finished = time.monotonic()
    job.phase = DONE


async def drive(state: SandboxState, job: Job) -> None:
    try:
        await _wait_in_queue(state, job)
        if job.cancel_requested:
            return _finish(job, CANCELLED)
        job.phase, job.started = RUNNING, time.monotonic()
        job.log(f"Runner picked up the request for {job.endpoint} (aivp sandbox placeholder)")
        inputs, errors = await anyio.to_thread.run_sync(prepare, state, job)
        if errors:
            job.log("Input validation failed", "ERROR")
            return _finish(job, Failure(422, errors[0]["type"], errors[0]["msg"], errors))
        d = job.directives
        failing = d.unsafe or d.unsafe_image or d.error is not None
        renderer = None
        if not failing:  # render in a worker thread while the clock runs, so the loop stays free
            renderer = asyncio.ensure_future(anyio.to_thread.run_sync(render_outputs, state, job, inputs))
            # a cancelled job abandons its render; retrieve any error so asyncio does not warn about it
            renderer.add_done_callback(lambda t: t.cancelled() or t.exception())
        marks = [0.25, 0.5, 0.75]
        while True:
            if job.cancel_requested:
                job.log("Cancelled by the client", "WARN")
                return _finish(job, CANCELLED)
            elapsed = time.monotonic() - job.started
            if marks and elapsed >= marks[0] * job.run_s:
                job.log(f"Generating placeholder: {int(marks.pop(0) * 100)}%")
            if elapsed >= job.run_s and (renderer is None or renderer.done()):
                break
            await anyio.sleep(TICK)
        if failing:
            return _finish(job, _directive_failure(job))
        assert renderer is not None
        _store(state, job, renderer.result())
        job.log("Done")
        _finish(job)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug or a broken input: the job fails like a crashed fal app
        job.log(f"Placeholder render failed: {exc!r}", "ERROR")
        _finish(job, ERRORS[500])


async def _wait_in_queue(state: SandboxState, job: Job) -> None:
    depth = job.queue_depth
    while not job.cancel_requested:
        stuck = state.config.stuck or job.directives.stuck
        elapsed = time.monotonic() - job.submitted
        if not stuck and elapsed >= job.queue_s:
            return
        left = 1.0 if stuck else 1.0 - elapsed / max(job.queue_s, 1e-9)
        job.queue_position = max(0, min(depth, int(left * (depth + 1))))  # counts down to 0, 0-indexed
        await anyio.sleep(TICK)


def _directive_failure(job: Job) -> Failure:
    d = job.directives
    if d.unsafe or d.unsafe_image:
        entries = []
        if d.unsafe:
            entries.append(safety_error(["prompt"], job.payload.get("prompt")))
        if d.unsafe_image:
            urls = input_urls(job.payload)
            loc, url = urls[0] if urls else (["image_url"], None)
            entries.append(safety_error(loc, url))
        return Failure(422, "content_policy_violation", entries[0]["msg"], entries)
    return ERRORS.get(d.error or 500, Failure(d.error or 500, "internal_error", "Sandbox error"))


# -- inputs ----------------------------------------------------------------------------------


def fetch(state: SandboxState, url: str) -> bytes | None:
    """The bytes behind an input URL: a data URI, or a live file on this sandbox. The sandbox has
    no network, so anything else is a download error, as an unreachable URL is on fal."""
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        try:
            return base64.b64decode(data, validate=False) if head.endswith(";base64") else unquote(data).encode()
        except (binascii.Error, ValueError):
            return None
    f = file_for_url(state, url)
    if f is None or expired_status(state, f) is not None:
        return None
    return state.store.read(f)


def file_for_url(state: SandboxState, url: str) -> StoredFile | None:
    parts, base = urlsplit(url), urlsplit(state.base_url)
    host = (parts.hostname or "").replace("localhost", "127.0.0.1")
    if parts.scheme not in ("http", "https") or (host, parts.port) != (base.hostname, base.port):
        return None
    m = re.search(r"/(files/.+)$", unquote(parts.path))
    return state.store.get(m.group(1)) if m else None


def expired_status(state: SandboxState, f: StoredFile) -> int | None:
    """The status a GET of `f` answers instead of its bytes, or None while it is live."""
    now = time.time()
    if f.expires is not None and now >= f.expires:
        return 404
    if f.generated:
        if state.config.expire_status is not None:
            return state.config.expire_status
        ttl = state.config.output_ttl_s
        if ttl is not None and now >= f.created + ttl:
            return 404
    return None


def prepare(state: SandboxState, job: Job) -> tuple[dict[str, Image], list[dict[str, Any]]]:
    """Validate the payload and fetch its inputs: (url -> decoded image, error entries)."""
    errors = validate(job.spec, job.payload)
    if errors:
        return {}, errors
    from .video import first_frame

    images: dict[str, Image] = {}
    for loc, url in input_urls(job.payload):
        data = fetch(state, url)
        if data is None:
            errors.append(download_error(loc, url))
            continue
        field_name = next((x for x in reversed(loc) if isinstance(x, str)), "")
        img = first_frame(data) if "video" in field_name else render.decode_image(data)
        if img is not None:
            images[url] = img
    if errors:
        job.log("Failed to download an input file", "ERROR")
    return images, errors


# -- outputs ---------------------------------------------------------------------------------


def _duration(roles: dict[str, Any], payload: dict[str, Any]) -> float:
    m = re.match(r"\s*(\d+(?:\.\d+)?)", str(roles.get("duration", "")))
    if m:
        return min(60.0, max(0.5, float(m.group(1))))
    shots = payload.get("multi_prompt")
    if isinstance(shots, list) and shots:  # Kling multi-shot: the shots' durations add up
        seconds = [re.sub(r"[^\d.]", "", str(s.get("duration", 5))) or "5" for s in shots if isinstance(s, dict)]
        return min(60.0, sum(float(x) for x in seconds))
    return 5.0


def _prompt(roles: dict[str, Any], payload: dict[str, Any]) -> str:
    prompt = roles.get("prompt")
    if isinstance(prompt, str):
        return prompt
    shots = payload.get("multi_prompt")
    if isinstance(shots, list):
        return " | ".join(str(s.get("prompt", "")) for s in shots if isinstance(s, dict))
    return str(payload.get("prompt", ""))


def _pick(roles: dict[str, Any], images: dict[str, Image], *names: str) -> Image | None:
    for n in names:
        v = roles.get(n)
        for url in v if isinstance(v, list) else [v]:
            if isinstance(url, str) and url in images:
                return images[url]
    return None


def render_outputs(state: SandboxState, job: Job, images: dict[str, Image]) -> list[render.RenderedFile] | int:
    """Render the job's placeholder files (runs in a worker thread), or return a filler size."""
    size_override = job.directives.bytes or state.config.output_bytes
    if size_override:
        return int(size_override)
    spec, payload = job.spec, job.payload
    roles = role_values(spec, payload)
    seed = roles.get("seed")
    job.seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else random.randrange(2**31)
    prompt = _prompt(roles, payload)
    subtitle = f"{spec.model_name} · {spec.endpoint}" if spec.known else f"{spec.endpoint} (not in the aivp catalog)"
    presets = next((p.presets for p in spec.params.values() if p.role == "size" and p.presets), None)
    inputs = list(images.values())
    if spec.output == "video":
        from .video import render_video

        start = _pick(roles, images, "start_image", "image", "references", "elements", "video")
        size = render.output_size(roles, presets, start, render.VIDEO_LONG_SIDE, default_ratio=16 / 9)
        base = start or render.card(
            (int(size[0] * 1.25), int(size[1] * 1.25)), subtitle=subtitle, prompt=prompt,
            thumbs=inputs[:4], footer=f"seed {job.seed} · not a real generation", seed=job.seed,
        )
        audio = roles.get("audio") in (True, 1, "true", "1")
        data = render_video(size=size, duration_s=_duration(roles, payload), base=base,
                            end=_pick(roles, images, "end_image"), audio=audio, label="PLACEHOLDER · aivp sandbox")
        return [render.RenderedFile(data, "video/mp4", "placeholder.mp4", size[0], size[1])]
    first = inputs[0] if inputs else None
    count = 1 if spec.output == "image" else max(1, min(8, int(roles.get("num_images") or 1)))
    size = render.output_size(roles, presets, first, render.IMAGE_LONG_SIDE)
    factor = roles.get("upscale_factor")
    if first is not None and isinstance(factor, (int, float)) and "aspect_ratio" not in roles and "size" not in roles:
        size = render.fit(first.width / first.height, min(render.IMAGE_LONG_SIDE, int(max(first.size) * factor)))
    fmt = str(roles.get("output_format") or "png")
    return render.render_images(size=size, count=count, subtitle=subtitle, prompt=prompt, inputs=inputs,
                                seed=job.seed, fmt=fmt)


def _lifecycle_expiry(headers: dict[str, str]) -> float | None:
    import json

    raw = headers.get("x-fal-object-lifecycle-preference")
    try:
        seconds = json.loads(raw)["expiration_duration_seconds"] if raw else None
    except (ValueError, KeyError, TypeError):
        return None
    return time.time() + float(seconds) if isinstance(seconds, (int, float)) else None


def _store(state: SandboxState, job: Job, rendered: list[render.RenderedFile] | int) -> None:
    if isinstance(rendered, int):  # huge-output mode: nothing rendered, bytes made up when read
        video = job.spec.output == "video"
        name, ctype = ("placeholder.mp4", "video/mp4") if video else ("placeholder.png", "image/png")
        job.files = [(state.store.put_filler(rendered, name, ctype, request_id=job.request_id), None, None)]
        job.billable_units = 1
        return
    expires = _lifecycle_expiry(job.headers)
    for r in rendered:
        f = state.store.put_bytes(r.data, r.file_name, r.content_type, generated=True, expires=expires,
                                  request_id=job.request_id)
        job.files.append((f, r.width, r.height))
    roles = role_values(job.spec, job.payload)
    job.billable_units = _duration(roles, job.payload) if job.spec.output == "video" else len(rendered)
