"""BytePlus ModelArk image generation (provider-protocols 6, checklist 6.7), under ``{url}/byteplus``.

``POST /api/v3/images/generations`` is synchronous: the request is checked at once (size presets and
pixel range from the catalog's limits, enums, reference count and format, sequential options), then
held open while the shared job engine renders the placeholder images (queue_s + image_s, or
``[sandbox:slow=S]``), and answered with every image as a signed, expiring link on ``/byteplus/tos/``
or inline (``response_format: b64_json``). Errors are OpenAI-style ``{"error": {code, message, param,
type}}``, and every answer carries ``X-Request-Id``.

Directives: ``[sandbox:unsafe]`` (input text refused), ``[sandbox:unsafe-image]`` (a reference refused),
``[sandbox:refuse-image=N]`` (image N of the set refused by the output filter; the others are
delivered), ``[sandbox:error=500|503]``, ``[sandbox:slow=S]``, ``[sandbox:stuck]``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..catalog import find_route
from ..catalog.capable import limits_of
from . import jobs, render
from .fal_storage import serve_file
from .faults import guarded
from .state import Submission
from .validate import spec_for, validate

if TYPE_CHECKING:
    from starlette.requests import Request

    from .state import SandboxState

ROUTE_NAMES = ("byteplus_generate", "byteplus_image")
INPUTS = "_sandbox_input_urls"
TYPES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests",
         500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
URL_TTL_S = 86400
REFUSE = re.compile(r"\[sandbox:refuse-image=(\d+)\]", re.IGNORECASE)
DATA_URI = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)
_XML = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{msg}</Message></Error>"


class Refused(Exception):
    """A request that fails validation: the error answer to send."""

    def __init__(self, status: int, code: str, message: str, param: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def ark_error(rid: str, status: int, code: str, message: str, param: str = "", headers: dict[str, str] | None = None
              ) -> JSONResponse:
    body = {"error": {"code": code, "message": f"{message} Request id: {rid}", "param": param,
                      "type": TYPES.get(status, "Error")}}
    return JSONResponse(body, status_code=status, headers={"x-request-id": rid, **(headers or {})})


def request_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + secrets.token_hex(12)


def _invalid(param: str, why: str) -> Refused:
    return Refused(400, "InvalidParameter", f"The parameter `{param}` specified in the request is not valid: {why}.", param)


def check_size(value: Any, presets: dict[str, tuple[int, int]], min_px: int | None, max_px: int | None) -> tuple[int, int]:
    """(width, height) of a size preset or "WxH", checked against the model's pixel range and aspect limits."""
    if value is None:
        value = "2048x2048"
    if isinstance(value, str) and value in presets:
        return presets[value]
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", value) if isinstance(value, str) else None
    if not m:
        raise _invalid("size", f"use {', '.join(presets)} or WIDTHxHEIGHT, not {value!r}")
    w, h = int(m[1]), int(m[2])
    if min_px is not None and w * h < min_px:
        raise _invalid("size", f"{w}x{h} is {w * h} pixels; the model needs at least {min_px}")
    if max_px is not None and w * h > max_px:
        raise _invalid("size", f"{w}x{h} is {w * h} pixels; the model takes at most {max_px}")
    if not 1 / 16 <= w / h <= 16:
        raise _invalid("size", f"the aspect ratio of {w}x{h} is outside 1/16 to 16")
    return w, h


def check_images(state: SandboxState, value: Any) -> list[str]:
    """The reference images: URLs this sandbox serves, or image data: URIs; at most 14, each decodable."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if len(items) > 14:
        raise _invalid("image", f"at most 14 reference images, not {len(items)}")
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise Refused(400, "InvalidImageURL.EmptyURL", f"image[{i}] is empty.", "image")
        if item.lower().startswith("data:") and not DATA_URI.match(item):
            raise Refused(400, "InvalidImageURL.InvalidFormat", f"image[{i}] is not a data:image/<format>;base64 URI.",
                          "image")
        if not item.lower().startswith(("data:", "http://", "https://")):
            raise Refused(400, "InvalidImageURL.InvalidFormat", f"image[{i}] is neither a URL nor a data URI.", "image")
        try:
            data = jobs.fetch(state, item)
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            raise _invalid("image", f"image[{i}] could not be downloaded")
        if render.decode_image(data) is None:
            raise Refused(400, "InvalidImageURL.InvalidFormat", f"image[{i}] is not an image BytePlus can read.", "image")
    return items


def check(state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """Everything the generation needs, or Refused: size, set size, formats, references."""
    found = find_route(str(body.get("model") or ""), "byteplus")
    assert found is not None
    model, endpoint, _ = found
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        raise Refused(400, "MissingParameter", "The request failed because it is missing the `prompt` parameter.", "prompt")
    spec = spec_for(str(body["model"]), "byteplus")
    plain = {k: v for k, v in body.items() if k in spec.params and k not in ("size", "image") and v is not None}
    if errors := validate(spec, plain):
        e = errors[0]
        raise _invalid(str(e["loc"][1]) if len(e["loc"]) > 1 else "request", e["msg"])
    limits = limits_of(model, endpoint)
    presets = dict(spec.params["size"].presets or {}) if "size" in spec.params else {}
    w, h = check_size(body.get("size"), presets, limits.min_pixels, limits.max_pixels)
    refs = body.get("image")
    n_refs = len(refs) if isinstance(refs, list) else int(refs is not None)
    sequential = body.get("sequential_image_generation") or "disabled"
    options = body.get("sequential_image_generation_options") or {}
    count = 1
    if sequential == "auto":
        wanted = options.get("max_images", 15) if isinstance(options, dict) else None
        if not isinstance(wanted, int) or isinstance(wanted, bool) or not 1 <= wanted <= 15:
            raise _invalid("sequential_image_generation_options.max_images", "max_images must be 1 to 15")
        if n_refs + wanted > (limits.max_inputs_plus_outputs or 15):
            raise _invalid("sequential_image_generation_options.max_images",
                           f"{n_refs} reference images + {wanted} outputs is more than 15")
        count = min(wanted, 8)  # the sandbox makes at most 8 placeholders of a set
    images = check_images(state, refs)
    fmt = body.get("response_format") or "url"
    return {"size": (w, h), "images": images, "count": count, "b64": fmt == "b64_json"}


def routes(state: SandboxState) -> list[Route]:
    """The BytePlus routes, to be mounted at ``/byteplus``."""

    def sign(key: str, expires: int) -> str:
        return hmac.new(state.secret, f"tos\n{key}\n{expires}".encode(), hashlib.sha256).hexdigest()[:40]

    def link(key: str) -> str:
        date = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        expires = int(time.time()) + URL_TTL_S
        return (f"{state.base_url}/byteplus/tos/{quote(key)}?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Date={date}"
                f"&X-Tos-Expires={URL_TTL_S}&X-Tos-Deadline={expires}&X-Tos-SignedHeaders=host"
                f"&X-Tos-Signature={sign(key, expires)}")

    async def generate(request: Request) -> Response:
        rid = request_id()
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip() or (state.keys is not None and key.strip() not in state.keys):
            return ark_error(rid, 401, "AuthenticationError", "The API key or AK/SK in the request is missing or invalid.")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return ark_error(rid, 400, "InvalidParameter", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return ark_error(rid, 400, "InvalidParameter", "The request body must be a JSON object.")
        model = str(body.get("model") or "")
        if find_route(model, "byteplus") is None:
            return ark_error(rid, 404, "InvalidEndpoint.NotFound",
                             f"The model or endpoint {model} does not exist or you do not have access to it.", "model")
        try:
            plan = check(state, body)
        except Refused as r:
            return ark_error(rid, r.status, r.code, r.message, r.param)
        headers = {k.lower(): v for k, v in request.headers.items()}
        w, h = plan["size"]
        view = {"prompt": body["prompt"], "size": {"width": w, "height": h}, "num_images": plan["count"],
                "output_format": "jpeg", INPUTS: plan["images"]}
        if isinstance(body.get("seed"), int) and not isinstance(body["seed"], bool):
            view["seed"] = body["seed"]
        job = jobs.new_job(state, provider="byteplus", endpoint=model, payload=view, headers=headers, request_id=rid,
                           urls={}, app="")
        state.record_submission(Submission(model, rid, body, headers, dict(request.query_params), time.time(),
                                           provider="byteplus"))
        jobs.start(state, job)
        while not job.done:
            if await request.is_disconnected():  # the client gave up: the generation is abandoned
                job.cancel_requested = True
                return Response(status_code=499)
            await asyncio.sleep(jobs.TICK)
        return answer(job, body, plan, rid)

    def answer(job: jobs.Job, body: dict[str, Any], plan: dict[str, Any], rid: str) -> Response:
        d, f = job.directives, job.failure
        if d.unsafe:
            return ark_error(rid, 400, "InputTextSensitiveContentDetected",
                             "The request failed because the input text may contain sensitive information.")
        if d.unsafe_image:
            return ark_error(rid, 400, "InputImageSensitiveContentDetected",
                             "The request failed because the input image may contain sensitive information.", "image")
        if f is not None and f.error_type == "file_download_error":
            return ark_error(rid, 400, "InvalidParameter", "A reference image could not be downloaded.", "image")
        if f is not None:
            code = "ServiceUnavailable" if f.status == 503 else "InternalServiceError"
            return ark_error(rid, f.status if f.status >= 500 else 500, code, "The service encountered an unexpected "
                                                                               "internal error.")
        refused = {int(n) for n in REFUSE.findall(str(body.get("prompt")))}
        data: list[dict[str, Any]] = []
        made = 0
        w, h = plan["size"]
        for i, (stored, _, _) in enumerate(job.files, start=1):
            if i in refused:
                data.append({"error": {"code": "OutputImageSensitiveContentDetected",
                                       "message": "The request failed because the output image may contain sensitive "
                                                  "information."}})
                continue
            entry: dict[str, Any] = {"size": f"{w}x{h}"}
            if plan["b64"]:
                entry["b64_json"] = base64.b64encode(state.store.read(stored)).decode("ascii")
            else:
                entry["url"] = link(stored.key)
            data.append(entry)
            made += 1
        if made == 0:
            return ark_error(rid, 400, "OutputImageSensitiveContentDetected",
                             "The request failed because the output image may contain sensitive information.")
        created = int(time.time())
        tokens = made * (w * h // 256)
        out = {"model": job.endpoint, "created": created, "created_at": created, "data": data,
               "usage": {"generated_images": made, "output_tokens": tokens, "total_tokens": tokens}}
        return JSONResponse(out, headers={"x-request-id": rid})

    async def image(request: Request) -> Response:
        key = unquote(request.path_params["path"]).strip("/")
        f = state.store.get(key)
        q = request.query_params
        deadline = q.get("X-Tos-Deadline", "")
        if f is None or not deadline.isdigit() or not hmac.compare_digest(q.get("X-Tos-Signature", ""),
                                                                         sign(key, int(deadline))):
            return Response(_XML.format(code="SignatureDoesNotMatch", msg="The request signature does not match."),
                            status_code=403, media_type="application/xml")
        expired = jobs.expired_status(state, f)
        if expired is not None or time.time() > int(deadline):
            status = state.config.expire_status or 403  # object storage says AccessDenied for an expired link
            return Response(_XML.format(code="AccessDenied", msg="Request has expired."), status_code=status,
                            media_type="application/xml")
        return serve_file(state, request, f)

    return [
        Route("/api/v3/images/generations", guarded(state, "byteplus_generate", generate), methods=["POST"]),
        Route("/tos/{path:path}", guarded(state, "byteplus_image", image), methods=["GET", "HEAD"]),
    ]
