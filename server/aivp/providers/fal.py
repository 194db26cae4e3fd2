"""fal.ai's queue over plain httpx: submit, follow (SSE, else polling with backoff), result, cancel.

URL rule: a submit goes to the full endpoint id (`fal-ai/kling-video/o3/pro/text-to-video`), but a
request's status, result, stream and cancel URLs use only owner/alias (`fal-ai/kling-video`), plus
the namespace for `workflows/` and `comfy/` ids. The URLs fal returns are used when they point at
the configured queue host; anything else is rebuilt, so the key is only ever sent to that host.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from ..errors import (
    JobCanceled,
    JobFailed,
    JobNotFound,
    ProviderAuthError,
    ProviderError,
    ProviderHTTPError,
    SafetyRefusal,
    SubmitUncertain,
)
from ..settings import Settings
from .base import Completed, Handle, JobState, Lookup, OutputFile, ProviderBase, Queued, Result, Running
from .http import send
from .ids import endpoint_segments, url_path
from .lookup import same_input

log = logging.getLogger("aivp.fal")

NAMESPACES = ("workflows", "comfy")
SAFETY_TYPES = {"content_policy_violation"}


def app_path(endpoint_id: str) -> str:
    """The owner/alias part of an endpoint id that request URLs use (sub-path dropped), quoted."""
    parts = endpoint_segments(endpoint_id, "fal")
    if len(parts) == 1:
        owner, _, alias = parts[0].partition("-")
        if owner.isdigit() and alias:
            return url_path(owner, alias)
        raise ProviderError(f"{endpoint_id!r} is not a fal endpoint id; it looks like owner/app[/path].")
    if parts[0] in NAMESPACES:
        if len(parts) < 3:
            raise ProviderError(f"{endpoint_id!r} needs namespace/owner/app.")
        return url_path(*parts[:3])
    return url_path(*parts[:2])


def parse_status(body: dict[str, Any]) -> JobState:
    """fal's status vocabulary mapped to JobState; anything else is an error, not a guess."""
    status = body.get("status")
    logs = tuple(_log_lines(body.get("logs")))
    if status == "IN_QUEUE":
        pos = body.get("queue_position")
        return Queued(position=pos if isinstance(pos, int) else None)
    if status == "IN_PROGRESS":
        return Running(logs=logs)
    if status == "COMPLETED":
        return Completed(logs=logs, error=body.get("error"), error_type=body.get("error_type"))
    raise ProviderError(f"fal answered with an unknown job status {status!r}; aivp does not guess what it means.")


def _log_lines(logs: Any) -> list[str]:
    if not isinstance(logs, list):
        return []
    return [str(e.get("message", "")) for e in logs if isinstance(e, dict) and e.get("message")]


def _fal_retryable(r: httpx.Response) -> bool:
    """408/409/429, and 502-504 that came from the ingress rather than from fal itself."""
    if r.status_code in (408, 409, 429):
        return True
    if r.status_code in (502, 503, 504):
        if r.headers.get("x-fal-request-timeout-type", "").lower() == "user":
            return False
        return "x-fal-request-id" not in r.headers
    return False


def _submit_retryable(r: httpx.Response) -> bool:
    """For a submit only what proves the request was not taken: throttling and an ingress 502/503."""
    if r.status_code in (408, 429):
        return True
    return r.status_code in (502, 503) and "x-fal-request-id" not in r.headers


def describe(response: httpx.Response) -> tuple[str, str | None, bool]:
    """(message, error_type, is_safety_refusal) from a fal error answer; `detail` may be a string or a list."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error_type = response.headers.get("x-fal-error-type")
    if isinstance(body, dict):
        error_type = body.get("error_type") or error_type
        detail = body.get("detail", body.get("status"))
    else:
        text = (response.text or "").strip()
        if "<html" in text[:200].lower():  # an ingress error page: its title says enough
            m = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            text = f"gateway page: {m.group(1).strip() if m else 'HTML error'}"
        detail = text[:300] or None
    safety = False
    if isinstance(detail, list):
        parts = []
        for entry in detail:
            if not isinstance(entry, dict):
                parts.append(str(entry))
                continue
            loc = [str(x) for x in entry.get("loc", []) if x != "body"]
            kind = entry.get("type")
            safety = safety or kind in SAFETY_TYPES
            error_type = error_type or kind
            where = ".".join(loc)
            parts.append(f"{where + ': ' if where else ''}{entry.get('msg', 'invalid')}" + (f" ({kind})" if kind else ""))
        message = "; ".join(parts) or "no detail"
    else:
        message = str(detail) if detail else f"HTTP {response.status_code}"
    safety = safety or (error_type in SAFETY_TYPES)
    return message, error_type, safety


class FalProvider(ProviderBase):
    """The fal queue and storage, driven by settings (base URLs, key) and a shared httpx client."""

    name = "fal"
    auth_scheme = "Key"
    request_id_pattern = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
    request_id_example = "764cabcf-b745-4b3e-ae38-1200304cf45b (a UUID)"

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        super().__init__(settings, client)
        self.queue = self.base_url("queue").rstrip("/")
        self._storage: Any = None

    # ---------------------------------------------------------------- URLs

    def handle_for(self, endpoint: str, request_id: str) -> Handle:
        base = f"{self.queue}/{app_path(endpoint)}/requests/{url_path(request_id)}"
        return Handle("fal", endpoint, request_id, {
            "status": f"{base}/status", "response": base, "cancel": f"{base}/cancel", "stream": f"{base}/status/stream",
        })

    def _trusted(self, url: Any) -> bool:
        if not isinstance(url, str):
            return False
        a, b = urlsplit(url), urlsplit(self.queue)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc) and a.path.startswith(b.path)

    # ---------------------------------------------------------------- queue

    async def submit(self, endpoint: str, payload: dict[str, Any], *, shape: str | None = None) -> Handle:
        url = f"{self.queue}/{url_path(*endpoint_segments(endpoint, 'fal'))}"
        r = await send(self.client, "POST", url, policy=self.policy, idempotent=False, retryable=_submit_retryable,
                       what=f"submit to {endpoint}", json=payload, headers=self.auth_headers())
        if r.status_code >= 500 and not (r.status_code in (502, 503) and "x-fal-request-id" not in r.headers):
            # only an ingress 502/503 proves fal never took the job; any other server error may follow an enqueue
            message, _, _ = describe(r)
            raise SubmitUncertain(f"fal answered the submit to {endpoint} with HTTP {r.status_code} ({message}); "
                                  "the job may have been queued anyway, so aivp did not send it again")
        if r.status_code != 200:
            raise self._http_error(r, f"fal refused the submit to {endpoint}")
        try:
            body = r.json()
        except ValueError:
            raise SubmitUncertain(f"fal answered the submit to {endpoint} with a body aivp cannot read; the job may "
                                  "have been queued, so aivp did not send it again") from None
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise SubmitUncertain(f"fal answered the submit to {endpoint} without a request id; the job may have "
                                  "been queued, so aivp did not send it again")
        handle = self.handle_for(endpoint, request_id)
        urls = dict(handle.urls)
        for key, field in (("status", "status_url"), ("response", "response_url"), ("cancel", "cancel_url")):
            if self._trusted(body.get(field)):
                urls[key] = body[field]
        urls["stream"] = urls["status"].rstrip("/") + "/stream"
        return Handle("fal", endpoint, request_id, urls)

    async def find_submission(self, endpoint: str, sent: dict[str, Any], since: datetime, until: datetime, *,
                              known: Callable[[str], bool] | None = None) -> Lookup:
        """Requests of `endpoint` in fal's request history between `since` and `until` whose input is `sent`."""
        from .fal_platform import FalPlatform

        try:
            items = await FalPlatform(self.settings, self.client).requests(endpoint, since, until)
        except ProviderHTTPError as exc:
            if exc.status_code in (401, 403):  # request history may be kept to admin-scoped keys
                return Lookup("cannot", reason=f"fal would not show this key the request history ({exc.status_code}); "
                                               "it may need an admin-scoped key")
            return Lookup("cannot", reason=str(exc))
        except ProviderError as exc:  # a malformed answer, too many requests to read
            return Lookup("cannot", reason=str(exc))
        items = [i for i in items if isinstance(i.get("request_id"), str) and not (known and known(i["request_id"]))]
        matches = [i for i in items if same_input(sent, i.get("json_input"))]
        blind = sum(1 for i in items if i.get("json_input") is None)
        if len(matches) > 1:
            return Lookup("several", count=len(matches))
        if matches:
            return Lookup("found", handle=self.handle_for(endpoint, self.check_request_id(matches[0]["request_id"])),
                          count=1)
        if blind:  # fal kept no input for some requests in the window: one of them may be this job
            return Lookup("cannot", reason=f"fal kept no input for {blind} request(s) in that time window")
        return Lookup("none")

    async def status(self, handle: Handle) -> JobState:
        r = await send(self.client, "GET", handle.urls["status"], policy=self.policy, idempotent=True,
                       retryable=_fal_retryable, what="read the job status", params={"logs": "1"},
                       headers=self.auth_headers())
        if r.status_code == 404:
            raise JobNotFound(f"fal does not know request {handle.request_id} of {handle.endpoint}.")
        if r.status_code not in (200, 202):
            raise self._http_error(r, "fal would not say how the job is doing")
        return parse_status(r.json())

    async def watch(self, handle: Handle) -> AsyncIterator[JobState]:
        """States until COMPLETED: from the SSE stream, falling back to polling when it fails or stalls."""
        last: JobState | None = None
        try:
            async for state in self._stream(handle):
                if state != last:
                    last = state
                    yield state
                if isinstance(state, Completed):
                    return
        except (httpx.HTTPError, ProviderError, ValueError) as exc:
            log.info("status stream for %s ended (%s); polling instead", handle.request_id, type(exc).__name__)
        async for state in self.poll(lambda: self.status(handle), last):
            yield state

    async def _stream(self, handle: Handle) -> AsyncIterator[JobState]:
        from httpx_sse import aconnect_sse

        idle = self.settings.sse_idle_s
        timeout = httpx.Timeout(self.settings.connect_timeout_s, read=idle)
        async with aconnect_sse(self.client, "GET", handle.urls["stream"], params={"logs": "1"},
                                headers=self.auth_headers(), timeout=timeout) as source:
            if source.response.status_code != 200:
                raise ProviderError(f"status stream answered HTTP {source.response.status_code}")
            async for event in source.aiter_sse():
                if not event.data:
                    continue
                yield parse_status(json.loads(event.data))
        raise ProviderError("status stream closed before the job completed")

    async def result(self, handle: Handle) -> Result:
        for attempt in range(5):
            r = await send(self.client, "GET", handle.urls["response"], policy=self.policy, idempotent=True,
                           retryable=_fal_retryable, what="fetch the job result", headers=self.auth_headers())
            if r.status_code == 200:
                units = r.headers.get("x-fal-billable-units")
                try:
                    billed = float(units) if units is not None else None
                except ValueError:
                    billed = None
                return Result(r.json(), billed)
            message, error_type, _ = describe(r)
            if r.status_code == 400 and "in progress" in message.lower():  # status raced ahead of the result
                await anyio.sleep(self.policy.backoff(attempt + 1))
                continue
            raise self._job_error(r, handle)
        raise ProviderError(f"fal says request {handle.request_id} is complete but keeps saying it is in progress.")

    async def cancel(self, handle: Handle) -> bool:
        """Ask fal to cancel; True when it accepted, False when the job had already finished."""
        r = await send(self.client, "PUT", handle.urls["cancel"], policy=self.policy, idempotent=True,
                       retryable=_fal_retryable, what="cancel the job", headers=self.auth_headers())
        if r.status_code in (200, 202):
            return True
        message, _, _ = describe(r)
        if r.status_code == 400 and "ALREADY_COMPLETED" in (r.text or ""):
            return False
        if r.status_code == 404:
            raise JobNotFound(f"fal does not know request {handle.request_id}; it may have expired.")
        if r.status_code == 403:  # about this request, not the account: another key's request, or not cancellable
            raise ProviderAuthError(
                f"fal refused to cancel request {handle.request_id} (403: {message}): this key may not act on it "
                f"(it may belong to another key or account). Cancel it on the dashboard ({self.dashboard}).",
                status_code=403, request_id=handle.request_id)
        raise self._http_error(r, "fal would not cancel the job")

    async def upload(self, path: Path, content_type: str) -> str:
        from .fal_storage import FalStorage

        if self._storage is None:
            self._storage = FalStorage(self.settings, self.client, self.policy, self.auth_headers)
        url: str = await self._storage.upload(path, content_type)
        return url

    def outputs(self, shape: str, output: dict[str, Any]) -> list[OutputFile]:
        """The files of a result, read by the endpoint's declared shape (tolerant of the other shapes)."""
        kind = "video" if shape == "video" or "video" in output else "image"
        items: list[Any] = []
        for key in (shape, "images", "image", "video"):
            value = output.get(key)
            if isinstance(value, list):
                items = value
            elif isinstance(value, dict):
                items = [value]
            if items:
                break
        files = []
        for item in items:
            url = item.get("url") if isinstance(item, dict) else item if isinstance(item, str) else None
            if not url:
                continue
            files.append(OutputFile(url=url, kind=kind, content_type=item.get("content_type") if isinstance(item, dict) else None,
                                    file_name=item.get("file_name") if isinstance(item, dict) else None,
                                    width=item.get("width") if isinstance(item, dict) else None,
                                    height=item.get("height") if isinstance(item, dict) else None))
        return files

    # ---------------------------------------------------------------- errors

    def denied_hint(self, status: int, code: str | None) -> str:
        return ("fal answers 403 when the balance is exhausted (top up at https://fal.ai/dashboard/billing) or the key "
                "may not use this endpoint; the message above says which. Fix that, then try again.")

    def _http_error(self, r: httpx.Response, what: str) -> ProviderHTTPError:
        message, error_type, _ = describe(r)
        rid = r.headers.get("x-fal-request-id")
        refused = self.access_error(r, message, what=what, error_type=error_type, request_id=rid)
        return refused or ProviderHTTPError(f"{what} (HTTP {r.status_code}: {message}).", status_code=r.status_code,
                                            error_type=error_type, request_id=rid)

    def _job_error(self, r: httpx.Response, handle: Handle) -> Exception:
        message, error_type, safety = describe(r)
        if safety:
            return SafetyRefusal(
                f"fal's content checker refused this request ({message}). Nothing was saved; fal reported "
                f"{r.headers.get('x-fal-billable-units', 'unknown')} billable units. Rephrase the prompt or change "
                "the input images, then call again.", error_type=error_type)
        if error_type == "client_cancelled" or r.status_code == 499:
            return JobCanceled(f"Request {handle.request_id} was cancelled at fal.")
        if r.status_code in (401, 403):
            return self._http_error(r, "fal refused to hand over the result")
        if r.status_code == 422:
            return JobFailed(
                f"fal rejected the input ({message}). Fix the argument and call again; "
                "search_models(model=...) lists each parameter's valid values.", error_type=error_type)
        if r.status_code == 404:
            return JobFailed(f"fal no longer has the result of request {handle.request_id} (404); results expire.",
                             error_type=error_type)
        return JobFailed(f"fal failed the job (HTTP {r.status_code}: {message}).", error_type=error_type)
