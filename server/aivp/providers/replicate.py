"""Replicate's prediction API over plain httpx: create, follow by polling, result, cancel, files.

An official model (a catalog route `owner/name`) is run with `POST /v1/models/{owner}/{name}/predictions`;
a pinned version (`owner/name:<64 hex>` or the bare hex id) with `POST /v1/predictions`. Image models
ask for `Prefer: wait=N`, N being one poll interval at most (`poll_max_s`): a fast model then answers
in the create itself, while a slow one comes back `starting` and is polled like any other (the reason
N stays small: until the create answers, the ledger has no prediction id to resume after a crash).
The `urls.get`/`urls.cancel` Replicate returns are used only on the configured API host, so the token
is never sent anywhere else; output files live on a delivery host and are fetched without it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
import httpx

from ..errors import (
    InputFileError,
    InvalidParameterError,
    JobCanceled,
    JobFailed,
    JobNotFound,
    OutputLost,
    ProviderError,
    ProviderHTTPError,
    SafetyRefusal,
    SubmitUncertain,
)
from ..settings import Settings
from .base import Canceled, Completed, Handle, JobState, Lookup, OutputFile, ProviderBase, Queued, Result, Running
from .http import host_of, send
from .lookup import same_input

SEG = r"[A-Za-z0-9_][\w.-]*"  # never '.' or '..' (see providers/ids.py)
VERSION = re.compile(rf"^(?:(?P<model>{SEG}/{SEG}):)?(?P<version>[0-9a-f]{{64}})$")
MODEL = re.compile(rf"^{SEG}/{SEG}$")
MAX_FILE_BYTES = 100 * 1024 * 1024  # the files API limit
TERMINAL = ("succeeded", "failed", "canceled", "aborted")
SYNC_WAIT_S = 1
# Deadlines Replicate enforces: one that never started is 'aborted' (public models do not bill it), one
# still running is 'canceled'. Far above a normal run; they stop a stuck prediction from billing for hours.
CANCEL_AFTER = {"image": "30m", "video": "3h"}
LOOKUP_PAGES = 5
SAFETY = re.compile(r"\(E005\)|flagged as sensitive|\bnsfw\b", re.IGNORECASE)
TRANSIENT = re.compile(r"\(code: PA\)|prediction interrupted", re.IGNORECASE)
SEED = re.compile(r"using seed:?\s*(\d+)", re.IGNORECASE)
KEEP_LOG_CHARS = 4000


def parse_status(body: dict[str, Any]) -> JobState:
    """Replicate's status vocabulary mapped to JobState; anything else is an error, not a guess."""
    status = body.get("status")
    logs = tuple(log_lines(body.get("logs")))
    if status == "starting":
        return Queued()
    if status == "processing":
        return Running(logs=logs)
    if status == "succeeded":
        return Completed(logs=logs)
    if status == "failed":
        return Completed(logs=logs, error=str(body.get("error") or "failed"), error_type=error_code(body.get("error")))
    if status in ("canceled", "aborted"):  # aborted: a Cancel-After deadline passed before it started
        return Canceled()
    raise ProviderError(f"Replicate answered with an unknown prediction status {status!r}; aivp does not guess what it means.")


def log_lines(logs: Any) -> list[str]:
    """Replicate's logs are one growing string; progress bars redraw with carriage returns."""
    if not isinstance(logs, str):
        return []
    lines = [part.rstrip("\r").rsplit("\r", 1)[-1].strip() for part in logs.split("\n")]
    return [line for line in lines if line]


def error_code(error: Any) -> str | None:
    """The code in a failure message: "... (code: PA)" -> PA, "... (E005)" -> E005."""
    m = re.search(r"\((?:code:\s*)?([A-Z]{1,3}\d{0,5})\)", str(error or ""))
    return m.group(1) if m else None


def describe(response: httpx.Response) -> str:
    """The message of an RFC 7807 problem answer; a 422 lists each invalid field."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()[:300] or f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return str(body)[:300]
    fields = body.get("invalid_fields")
    if isinstance(fields, list) and fields:
        parts = []
        for f in fields:
            if isinstance(f, dict):
                name = str(f.get("field", "")).removeprefix("input.")
                parts.append(f"{name + ': ' if name else ''}{f.get('description') or f.get('type') or 'invalid'}")
        return "; ".join(parts)
    detail = str(body.get("detail") or "").strip().lstrip("- ").strip()
    title = str(body.get("title") or "").strip()
    return detail or title or f"HTTP {response.status_code}"


def _read_retryable(r: httpx.Response) -> bool:
    """GETs (and other repeatable calls): throttling and server errors are worth another try."""
    return r.status_code in (408, 409, 429) or r.status_code >= 500


def _create_retryable(r: httpx.Response) -> bool:
    """A create is repeated only when Replicate said it was not taken: throttled (429)."""
    return r.status_code == 429


def urls_in(value: Any) -> list[str]:
    """Every file URL in an output, whatever its shape: a string, a list, an object with url(s)."""
    if isinstance(value, str):
        return [value] if value.lower().startswith(("https://", "http://", "data:")) else []
    if isinstance(value, list):
        return [u for v in value for u in urls_in(v)]
    if isinstance(value, dict):
        for key in ("url", "urls", "images", "image", "video", "output", "files"):
            if key in value:
                return urls_in(value[key])
    return []


class ReplicateProvider(ProviderBase):
    """Replicate's predictions and files API, driven by settings (base URL, token) and a shared httpx client."""

    name = "replicate"
    request_id_pattern = re.compile(r"[a-z0-9]{8,64}")
    request_id_example = "gm3qorzdhgbfurvjtvhg6dckhu"
    upload_ttl_s = 20 * 3600  # uploaded files expire after 24 h; reuse a URL only well before that
    credential = "token"
    denied_statuses = (402, 403)  # 402: the credit is used up

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        super().__init__(settings, client)
        self.base = self.base_url().rstrip("/")

    # ---------------------------------------------------------------- URLs

    def handle_for(self, endpoint: str, request_id: str) -> Handle:
        get = f"{self.base}/v1/predictions/{quote(request_id, safe='')}"
        return Handle("replicate", endpoint, request_id, {"get": get, "cancel": f"{get}/cancel"})

    def _trusted(self, url: Any) -> bool:
        if not isinstance(url, str):
            return False
        a, b = urlsplit(url), urlsplit(self.base)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc) and a.path.startswith(b.path + "/")

    def check_endpoint(self, endpoint: str) -> None:
        """Replicate's ids: owner/name, owner/name:<version> or a bare version id (never '.' or '..' parts)."""
        ref = endpoint.strip().strip("/")
        if not (VERSION.match(ref) or MODEL.match(ref)):
            raise InvalidParameterError(f"{endpoint!r} is not a Replicate model: use owner/name, owner/name:<version "
                                        "id> or a version id. Look the model up with search_models.")

    def _create_url(self, endpoint: str) -> tuple[str, dict[str, Any]]:
        """Where a prediction of `endpoint` is created, and what the body carries besides the input."""
        ref = endpoint.strip().strip("/")
        if m := VERSION.match(ref):
            return f"{self.base}/v1/predictions", {"version": m["version"]}
        if MODEL.match(ref):
            owner, name = ref.split("/")
            return f"{self.base}/v1/models/{quote(owner)}/{quote(name)}/predictions", {}
        raise ProviderError(f"{endpoint!r} is not a Replicate model: use owner/name, owner/name:<version id> or a version id.")

    def _sync_wait_s(self, shape: str | None) -> int | None:
        """Seconds to hold the create open (`Prefer: wait`): one, for image models only.

        While a create is held open the prediction's id is unknown, so a server killed in that window
        loses track of it (a lookup by time then finds it again). One second lets the fastest image
        models answer in one round trip and keeps that window short; video never waits."""
        if shape is None or shape == "video":
            return None
        return SYNC_WAIT_S

    # ---------------------------------------------------------------- predictions

    async def submit(self, endpoint: str, payload: dict[str, Any], *, shape: str | None = None) -> Handle:
        url, extra = self._create_url(endpoint)
        wait = self._sync_wait_s(shape)
        headers = self.auth_headers(**({"Prefer": f"wait={wait}"} if wait else {}),
                                    **{"Cancel-After": CANCEL_AFTER["video" if shape == "video" else "image"]})
        read = max(self.settings.read_timeout_s, (wait or 0) + 15.0)  # the answer may take the whole wait
        r = await send(self.client, "POST", url, policy=self.policy, idempotent=False, retryable=_create_retryable,
                       what=f"create a prediction of {endpoint} on Replicate", json={**extra, "input": payload},
                       headers=headers, timeout=httpx.Timeout(read, connect=self.settings.connect_timeout_s))
        if r.status_code not in (200, 201, 202):
            raise self._create_error(r, endpoint)
        try:
            body = r.json()
        except ValueError:
            body = None
        pid = body.get("id") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(pid, str) or not pid:
            raise SubmitUncertain(f"Replicate accepted the prediction of {endpoint} (HTTP {r.status_code}) but its answer "
                                  f"carried no prediction id, so aivp cannot follow it. Look for it at {self.dashboard}.")
        handle = self.handle_for(endpoint, pid)
        urls = dict(handle.urls)
        given: dict[str, Any] = body["urls"] if isinstance(body.get("urls"), dict) else {}
        for key in ("get", "cancel"):
            if self._trusted(given.get(key)):
                urls[key] = given[key]
        if isinstance(given.get("web"), str):
            urls["web"] = given["web"]
        data = {"prediction": _keep(body)} if body.get("status") in TERMINAL else {}
        return Handle("replicate", endpoint, pid, urls, data)

    async def find_submission(self, endpoint: str, sent: dict[str, Any], since: datetime, until: datetime, *,
                              known: Callable[[str], bool] | None = None) -> Lookup:
        """Predictions of `endpoint` created between `since` and `until` whose input is `sent` (newest first)."""
        model, version = _model_and_version(endpoint)
        params: dict[str, str] | None = {"created_after": _rfc3339(since), "created_before": _rfc3339(until)}
        url: str | None = f"{self.base}/v1/predictions"
        found: list[dict[str, Any]] = []
        for _ in range(LOOKUP_PAGES):
            if url is None:
                break
            r = await send(self.client, "GET", url, policy=self.policy, idempotent=True, retryable=_read_retryable,
                           what="list recent predictions on Replicate", headers=self.auth_headers(), params=params)
            if r.status_code in (401, 403):
                return Lookup("cannot", reason=f"Replicate refused the list of predictions ({r.status_code})")
            if r.status_code != 200:
                raise self._http_error(r, "Replicate would not list recent predictions")
            body = r.json() if r.content else {}
            for item in body.get("results") or [] if isinstance(body, dict) else []:
                if isinstance(item, dict) and _same_model(item, model, version) and not (
                        known and known(str(item.get("id")))):
                    found.append(item)
            url, params = (body.get("next") if isinstance(body, dict) and self._trusted(body.get("next")) else None), None
        matches = []
        for item in found:
            remote = item.get("input")
            if remote is None and isinstance(item.get("id"), str):  # a list entry without its input: read it
                remote = (await self._get(self.handle_for(endpoint, item["id"]))).get("input")
            if same_input(sent, remote):
                matches.append(item)
        if not matches:
            return Lookup("none")
        if len(matches) > 1:
            return Lookup("several", count=len(matches))
        return Lookup("found", handle=self.handle_for(endpoint, str(matches[0]["id"])), count=1)

    async def _get(self, handle: Handle) -> dict[str, Any]:
        r = await send(self.client, "GET", handle.urls["get"], policy=self.policy, idempotent=True,
                       retryable=_read_retryable, what="read the prediction on Replicate", headers=self.auth_headers())
        if r.status_code == 404:
            raise JobNotFound(f"Replicate does not know prediction {handle.request_id} of {handle.endpoint}.")
        if r.status_code != 200:
            raise self._http_error(r, "Replicate would not say how the prediction is doing")
        body = r.json()
        if not isinstance(body, dict):
            raise ProviderError("Replicate answered the prediction read with something that is not an object.")
        return body

    async def watch(self, handle: Handle) -> AsyncIterator[JobState]:
        """States until the prediction ends: the create's own answer when it was final, else polling with backoff."""
        known = handle.data.get("prediction")
        if isinstance(known, dict) and known.get("status") in TERMINAL:
            yield parse_status(known)
            return
        async for state in self.poll(lambda: self._read_state(handle)):
            yield state

    async def _read_state(self, handle: Handle) -> JobState:
        return parse_status(await self._get(handle))

    async def result(self, handle: Handle) -> Result:
        known = handle.data.get("prediction")
        body = known if isinstance(known, dict) and known.get("status") in TERMINAL else await self._get(handle)
        status = body.get("status")
        if status == "succeeded":
            output = body.get("output")
            if output is None and body.get("data_removed"):
                raise OutputLost(f"Replicate has removed the output of prediction {handle.request_id} (API predictions "
                                 "keep their files for one hour); the images cannot be fetched any more.")
            out: dict[str, Any] = {"output": output, "id": body.get("id"), "metrics": body.get("metrics") or {}}
            if m := SEED.search(str(body.get("logs") or "")):
                out["seed"] = int(m.group(1))
            return Result(out, None)
        if status == "failed":
            raise self._failure(body, handle)
        if status in ("canceled", "aborted"):
            raise JobCanceled(f"Prediction {handle.request_id} was cancelled at Replicate.")
        raise ProviderError(f"Replicate says prediction {handle.request_id} is {status!r}, not finished.")

    async def cancel(self, handle: Handle) -> bool:
        """Ask Replicate to cancel; True when it took the cancel, False when the prediction had already ended."""
        r = await send(self.client, "POST", handle.urls["cancel"], policy=self.policy, idempotent=True,
                       retryable=_read_retryable, what="cancel the prediction on Replicate",
                       headers=self.auth_headers())
        if r.status_code == 404:
            raise JobNotFound(f"Replicate does not know prediction {handle.request_id}; it may have expired.")
        if r.status_code not in (200, 202):
            raise self._http_error(r, "Replicate would not cancel the prediction")
        status = (r.json() or {}).get("status") if r.content else None
        return status not in ("succeeded", "failed")

    async def upload(self, path: Path, content_type: str) -> str:
        """Put a file on Replicate's files API; its `urls.get` is what a model input takes."""
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputFileError(f"{path.name} is {size / 1e6:.0f} MB; Replicate's files API takes up to 100 MB. "
                                 "Shrink it, or pass an https URL of the file.")
        data = await anyio.to_thread.run_sync(path.read_bytes)
        # a repeated upload only stores a second copy, so transport errors may be retried
        r = await send(self.client, "POST", f"{self.base}/v1/files", policy=self.policy, idempotent=True,
                       retryable=_read_retryable, what=f"upload {path.name} to Replicate",
                       files={"content": (path.name, data, content_type)}, headers=self.auth_headers())
        if r.status_code not in (200, 201):
            raise self._http_error(r, f"Replicate would not take the upload of {path.name}")
        url = ((r.json() or {}).get("urls") or {}).get("get")
        if not isinstance(url, str) or not url:
            raise ProviderError(f"Replicate stored {path.name} but sent no URL for it.")
        return url

    def outputs(self, shape: str, output: dict[str, Any]) -> list[OutputFile]:
        """The files of a result (a string, a list of strings or an object with url(s)), by the endpoint's shape."""
        kind = "video" if shape == "video" else "image"
        return [OutputFile(url=u, kind=kind) for u in urls_in(output.get("output"))]

    # ---------------------------------------------------------------- errors

    def _failure(self, body: dict[str, Any], handle: Handle) -> JobFailed:
        error = str(body.get("error") or "no reason given")
        code = error_code(error)
        if SAFETY.search(error):
            return SafetyRefusal(
                f"Replicate's safety filter flagged the input or the output ({error}). Nothing was saved. Rephrase "
                "the prompt or change the input images, then call again.", error_type=code or "E005")
        if TRANSIENT.search(error):
            return JobFailed(f"Replicate interrupted prediction {handle.request_id} ({error}). This is transient: "
                             "call the tool again.", error_type=code or "PA")
        return JobFailed(f"The model failed on Replicate: {error}", error_type=code or "model_error")

    def denied_hint(self, status: int, code: str | None) -> str:
        return "If the credit is used up, add some at https://replicate.com/account/billing and try again."

    def _http_error(self, r: httpx.Response, what: str) -> ProviderHTTPError:
        message = describe(r)
        refused = self.access_error(r, message, what=what)
        return refused or ProviderHTTPError(
            f"{what} (HTTP {r.status_code} from {host_of(str(r.request.url))}: {message}).", status_code=r.status_code)

    def _create_error(self, r: httpx.Response, endpoint: str) -> ProviderError:
        message = describe(r)
        if r.status_code == 422:
            return ProviderHTTPError(
                f"Replicate rejected the input of {endpoint} ({message}). Fix the argument and call again; "
                "search_models(model=...) lists each parameter's valid values.", status_code=422,
                error_type="invalid_input")
        if r.status_code == 404:
            return ProviderHTTPError(f"Replicate has no model {endpoint} (404: {message}); check the model id with "
                                     "search_models.", status_code=404)
        if r.status_code in (500, 502, 504):  # the answer was lost on the way: the prediction may exist
            return SubmitUncertain(
                f"Replicate answered the create of {endpoint} with HTTP {r.status_code} ({message}); the prediction may "
                f"have been created anyway, so aivp did not send it again. Look for it at {self.dashboard}.")
        if r.status_code == 503:
            return ProviderHTTPError(f"Replicate is unavailable (503: {message}); the prediction of {endpoint} was not "
                                     "created. Try again in a minute.", status_code=503)
        return self._http_error(r, f"Replicate refused the prediction of {endpoint}")


def _keep(body: dict[str, Any]) -> dict[str, Any]:
    """The part of a final prediction worth storing in the handle (logs trimmed)."""
    kept: dict[str, Any] = {k: body.get(k) for k in ("id", "status", "output", "error", "metrics", "data_removed")
                            if k in body}
    logs = body.get("logs")
    if isinstance(logs, str):
        kept["logs"] = logs[-KEEP_LOG_CHARS:]
    return kept


def _model_and_version(endpoint: str) -> tuple[str | None, str | None]:
    ref = endpoint.strip().strip("/")
    if m := VERSION.match(ref):
        return m["model"], m["version"]
    return ref, None


def _same_model(item: dict[str, Any], model: str | None, version: str | None) -> bool:
    """A listed prediction of this model (and version, when the endpoint pins one)."""
    if version is not None:
        return item.get("version") == version
    return item.get("model") == model


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
