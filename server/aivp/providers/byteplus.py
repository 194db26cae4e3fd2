"""BytePlus ModelArk Seedream over plain httpx: one synchronous `POST {ark}/images/generations`.

There is no job to follow: `submit` waits for the images (15-40 s, so with a long read timeout) and
keeps the whole answer in the handle's `data`, where the ledger stores it; `watch` then reports
Completed at once and `result` hands the stored answer back. With `response_format="b64_json"` the
images arrive inline and are kept as data: URIs. aivp sends `watermark: false` unless the caller sets
it (BytePlus's own default is a visible watermark).

The submit is not idempotent, so only a refused request (429) or a connection that never opened is
tried again; a 5xx answer or a broken read is reported, never repeated blindly. References go inline
as data: URIs (BytePlus hosts no uploads); output links expire after 24 h, so the runner downloads
them at once.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx

from ..errors import (
    InputFileError,
    InvalidParameterError,
    JobFailed,
    JobNotFound,
    ProviderHTTPError,
    SafetyRefusal,
    SubmitUncertain,
)
from ..settings import Settings
from .base import Completed, Handle, JobState, OutputFile, ProviderBase, Result
from .http import send

GENERATE_READ_S = 300.0  # a set of 4K images can take minutes; the SDK allows 600 s
MAX_REF_BYTES = 10 * 1024 * 1024


def is_sensitive(code: Any) -> bool:
    return "SensitiveContentDetected" in str(code or "")


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The OpenAI-style `{"error": {code, message, param, type}}` of an answer (empty fields when absent)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        text = (response.text or "").strip()[:300]
        return {"code": None, "message": text or f"HTTP {response.status_code}", "param": None, "type": None}
    return {k: err.get(k) for k in ("code", "message", "param", "type")}


def wire_body(model: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The request body: a custom size as "WxH", url answers and no watermark unless asked otherwise."""
    body = {k: v for k, v in payload.items() if v is not None}
    size = body.get("size")
    if isinstance(size, dict) and "width" in size and "height" in size:
        body["size"] = f"{int(size['width'])}x{int(size['height'])}"
    body.setdefault("response_format", "url")
    body.setdefault("watermark", False)
    body["model"] = model
    return body


def inline(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with every b64_json image turned into a data: URI under `url`."""
    data = []
    for entry in answer.get("data") or []:
        if isinstance(entry, dict) and isinstance(entry.get("b64_json"), str):
            fmt = str(entry.get("output_format") or "jpeg").lower().replace("jpg", "jpeg")
            entry = {**{k: v for k, v in entry.items() if k != "b64_json"},
                     "url": f"data:image/{fmt};base64,{entry['b64_json']}"}
        data.append(entry)
    return {**answer, "data": data}


def _size(entry: dict[str, Any]) -> tuple[int | None, int | None]:
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", str(entry.get("size") or ""))
    return (int(m[1]), int(m[2])) if m else (None, None)


def _submit_retryable(r: httpx.Response) -> bool:
    """Only a request BytePlus refused (429) is safe to send again; a 5xx may have generated and billed."""
    return r.status_code == 429


class BytePlusProvider(ProviderBase):
    """ModelArk's synchronous image generation, driven by settings (base URL, ARK key) and a shared httpx client."""

    name = "byteplus"
    credential = "API key"
    denied_subject = "request"  # a 403 is as often a model the key may not use as an overdue account

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        super().__init__(settings, client)
        self.base = self.base_url().rstrip("/")

    def _headers(self) -> dict[str, str]:
        # a fresh client request id per call, so BytePlus support can find one request
        return self.auth_headers({"Accept": "application/json", "X-Client-Request-Id": uuid.uuid4().hex})

    def handle_for(self, endpoint: str, request_id: str) -> Handle:
        """A handle without an answer: BytePlus keeps nothing to fetch later, so `watch` reports it lost."""
        return Handle("byteplus", endpoint, request_id)

    async def submit(self, endpoint: str, payload: dict[str, Any], *, shape: str | None = None) -> Handle:
        timeout = httpx.Timeout(max(self.settings.read_timeout_s, GENERATE_READ_S), connect=self.settings.connect_timeout_s)
        r = await send(self.client, "POST", f"{self.base}/images/generations", policy=self.policy, idempotent=False,
                       retryable=_submit_retryable, what=f"generate images with {endpoint} on BytePlus",
                       json=wire_body(endpoint, payload), headers=self._headers(), timeout=timeout)
        if r.status_code != 200:
            raise self._error(r, endpoint)
        try:
            answer = r.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):  # the images were made (and billed) but cannot be read
            raise SubmitUncertain(f"BytePlus answered the generation with {endpoint} (HTTP 200) with a body aivp cannot "
                                  "read; the images were probably made and billed, but there is no way to fetch them.")
        request_id = r.headers.get("x-request-id") or f"ark-{uuid.uuid4().hex}"
        return Handle("byteplus", endpoint, request_id, {}, {"answer": inline(answer)})

    async def watch(self, handle: Handle) -> AsyncIterator[JobState]:
        """The answer came with the submit: the job is over as soon as it has a handle."""
        if not isinstance(handle.data.get("answer"), dict):
            raise JobNotFound(f"BytePlus request {handle.request_id} has no stored answer, and BytePlus keeps no "
                              "results to fetch later.")
        yield Completed()

    async def result(self, handle: Handle) -> Result:
        answer = handle.data.get("answer")
        if not isinstance(answer, dict):
            raise JobNotFound(f"BytePlus request {handle.request_id} has no stored answer.")
        entries = [e for e in answer.get("data") or [] if isinstance(e, dict)]
        if not any(isinstance(e.get("url"), str) for e in entries):
            errors: list[dict[str, Any]] = [e["error"] for e in entries if isinstance(e.get("error"), dict)]
            top = answer.get("error")
            errors += [top] if isinstance(top, dict) else []
            if errors and all(is_sensitive(e.get("code")) for e in errors):
                raise SafetyRefusal("BytePlus's safety filter refused every image of this request "
                                    f"({errors[0].get('code')}). Nothing was saved. Rephrase the prompt or change the "
                                    "references, then call again.", error_type=str(errors[0].get("code")))
            why = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or "no images in the answer"
            raise JobFailed(f"BytePlus returned no images ({why}).", error_type="no_images")
        usage: dict[str, Any] = answer["usage"] if isinstance(answer.get("usage"), dict) else {}
        made = usage.get("generated_images")
        return Result(answer, float(made) if isinstance(made, int | float) else None)

    async def cancel(self, handle: Handle) -> bool:
        """Nothing to cancel: the images were made (and billed) before the job had a handle."""
        return False

    async def upload(self, path: Path, content_type: str) -> str:
        """BytePlus takes references inline: the file as a data: URI (10 MB at most)."""
        size = path.stat().st_size
        if size > MAX_REF_BYTES:
            raise InputFileError(f"{path.name} is {size / 1e6:.1f} MB; BytePlus takes reference images up to 10 MB "
                                 "each. Shrink it (or save it as JPEG), or pass an https URL of the file.")
        if not content_type.startswith("image/"):
            raise InputFileError(f"{path.name} is {content_type}; BytePlus Seedream takes only images as references.")
        data = await anyio.to_thread.run_sync(path.read_bytes)
        return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"

    def outputs(self, shape: str, output: dict[str, Any]) -> list[OutputFile]:
        """The images of the answer that were made (a link, or a data: URI for b64_json answers)."""
        files = []
        for entry in output.get("data") or []:
            url = entry.get("url") if isinstance(entry, dict) else None
            if not isinstance(url, str) or not url:
                continue
            w, h = _size(entry)
            mime = url[5:].split(";")[0] if url.startswith("data:") else None
            files.append(OutputFile(url=url, kind="image", content_type=mime, width=w, height=h))
        return files

    def output_warnings(self, shape: str, output: dict[str, Any]) -> list[str]:
        """One line for each image of a set that failed (typically refused by the safety filter)."""
        notes = []
        entries = [e for e in output.get("data") or [] if isinstance(e, dict)]
        for i, entry in enumerate(entries, start=1):
            err = entry.get("error")
            if not isinstance(err, dict):
                continue
            if is_sensitive(err.get("code")):
                notes.append(f"Image {i} of {len(entries)} was refused by BytePlus's safety filter "
                             f"({err.get('code')}); the other images were saved. Rephrase the prompt to get it.")
            else:
                notes.append(f"Image {i} of {len(entries)} failed at BytePlus ({err.get('code')}: {err.get('message')}).")
        return notes

    # ---------------------------------------------------------------- errors

    def denied_hint(self, status: int, code: str | None) -> str:
        if code == "AccountOverdueError":
            return f"The account is overdue; top it up in the BytePlus console ({self.dashboard})."
        return f"This key may not use the model; check its permissions in the Ark console ({self.dashboard})."

    def _error(self, r: httpx.Response, model: str) -> Exception:
        err = error_of(r)
        code, message, param = err["code"], err["message"], err["param"]
        rid = r.headers.get("x-request-id")
        status = r.status_code
        if is_sensitive(code):
            what = "the prompt" if "InputText" in str(code) else "a reference image" if "InputImage" in str(code) else \
                "the request"
            return SafetyRefusal(f"BytePlus's safety filter refused {what} ({code}); no image was made. "
                                 "Rephrase the prompt or change the references, then call again.", error_type=str(code))
        if refused := self.access_error(r, str(message), code=code, error_type=code, request_id=rid):
            return refused
        if status == 404:
            return ProviderHTTPError(
                f"BytePlus does not serve {model} to this key (404 {code}: {message}). Activate the model in the Ark "
                f"console ({self.dashboard}, Model activation), or check the model id.", status_code=404,
                error_type=code, request_id=rid)
        if status == 400 and (param or str(code).startswith(("InvalidParameter", "MissingParameter", "InvalidImageURL"))):
            field = param or str(code).split(".", 1)[-1]
            return InvalidParameterError(f"BytePlus rejected {field} ({code}: {message}). Fix it and call again; "
                                         "search_models(model='seedream-4.5') lists the valid values.")
        if status >= 500:  # like a lost answer: the images may have been made and billed, so never resent blindly
            return SubmitUncertain(
                f"BytePlus failed the generation (HTTP {status} {code or ''}: {message}); it may still have been "
                "processed and billed, so aivp did not send it again")
        return ProviderHTTPError(f"BytePlus refused the generation (HTTP {status} {code}: {message}).",
                                 status_code=status, error_type=code, request_id=rid)
