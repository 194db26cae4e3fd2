"""fal storage (provider-protocols 2.1, checklist 2.3): CDN token, uploads, signed-URL fallback, file GETs.

Mounted at ``/fal/rest`` (token, initiate), ``/fal/cdn`` (uploads with the Bearer CDN token, and
GET of every stored or generated file, with Range support) and ``/fal/gcs`` (the signed PUT URLs
that initiate hands out; a separate prefix standing in for Google's host, so tests can check that
the fal key is never sent there).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import shutil
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import anyio
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from . import jobs
from .fal_queue import check_key
from .faults import guarded
from .storage import StoredFile, guess_type, safe_name

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.requests import Request

    from .state import SandboxState

ROUTE_NAMES = ("token", "upload", "multipart_init", "multipart_part", "multipart_complete", "initiate",
               "signed_put", "cdn_get")
_GCS_ERROR = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{msg}</Message></Error>"


def _detail(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _gcs_error(status: int, code: str, msg: str) -> Response:
    return Response(_GCS_ERROR.format(code=code, msg=msg), status_code=status, media_type="application/xml")


async def _save(request: Request, path: Path) -> tuple[int, str]:
    """Stream the request body to `path`; (size, md5 hex). Uploads never sit in memory whole."""
    md5, size = hashlib.md5(), 0
    path.parent.mkdir(parents=True, exist_ok=True)
    async with await anyio.open_file(path, "wb") as fh:
        async for chunk in request.stream():
            md5.update(chunk)
            size += len(chunk)
            await fh.write(chunk)
    return size, md5.hexdigest()


def _lifecycle(request: Request) -> float | None:
    for name in ("x-fal-object-lifecycle-preference", "x-fal-object-lifecycle"):
        try:
            seconds = json.loads(request.headers[name])["expiration_duration_seconds"]
            return time.time() + float(seconds)
        except (KeyError, ValueError, TypeError):
            continue
    return None


def rest_routes(state: SandboxState) -> list[Route]:
    """``/fal/rest``: the CDN token and the signed-upload initiate call, both with Key auth."""

    async def token(request: Request) -> Response:
        if denied := check_key(state, request):
            return denied
        tok = secrets.token_urlsafe(24)
        expires = datetime.now(timezone.utc) + timedelta(seconds=state.config.token_ttl_s)
        state.tokens[tok] = expires.timestamp()
        return JSONResponse({"token": tok, "token_type": "Bearer", "base_url": f"{state.base_url}/fal/cdn",
                             "expires_at": expires.isoformat()})  # offset-aware: "+00:00", never "Z"

    async def initiate(request: Request) -> Response:
        if denied := check_key(state, request):
            return denied
        try:
            body = json.loads(await request.body() or b"{}")
            name, ctype = safe_name(body.get("file_name")), str(body.get("content_type") or "application/octet-stream")
        except (ValueError, AttributeError):
            return _detail(422, [{"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error"}])
        rand = secrets.token_hex(8)
        path = f"/fal/gcs/fal-sandbox-uploads/{rand}/{name}"
        expires = int(time.time() + state.config.signed_url_ttl_s)
        sig = hmac.new(state.secret, f"{path}\n{ctype}\n{expires}".encode(), hashlib.sha256).hexdigest()
        state.uploads[path] = {"key": f"files/gcs/{rand}/{name}", "content_type": ctype, "expires": expires,
                               "lifecycle": _lifecycle(request)}
        query = (f"X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Expires={expires}"
                 f"&X-Goog-SignedHeaders=content-type&X-Goog-Signature={sig}")
        return JSONResponse({"upload_url": f"{state.base_url}{quote(path)}?{query}",
                             "file_url": f"{state.base_url}/fal/cdn/files/gcs/{rand}/{quote(name)}"})

    return [
        Route("/storage/auth/token", guarded(state, "token", token), methods=["POST"]),
        Route("/storage/upload/initiate", guarded(state, "initiate", initiate), methods=["POST"]),
    ]


def gcs_routes(state: SandboxState) -> list[Route]:
    """``/fal/gcs``: the signed PUT target. It checks the signature and ignores Authorization."""

    async def signed_put(request: Request) -> Response:
        path = unquote(request.url.path)
        pending = state.uploads.get(path)
        q = request.query_params
        if pending is None:
            return _gcs_error(404, "NoSuchUpload", "No upload was initiated for this URL.")
        expected = hmac.new(state.secret, f"{path}\n{pending['content_type']}\n{pending['expires']}".encode(),
                            hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(q.get("X-Goog-Signature", ""), expected)
        if not signed or q.get("X-Goog-Expires") != str(pending["expires"]):
            return _gcs_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
        if time.time() > pending["expires"]:
            return _gcs_error(403, "ExpiredToken", "The provided token has expired.")
        if request.headers.get("content-type", "") != pending["content_type"]:  # content-type is a signed header
            return _gcs_error(403, "SignatureDoesNotMatch", "Content-Type does not match the signed content type.")
        key = pending["key"]
        await _save(request, state.store.disk_path(key))
        state.store.put_file(state.store.disk_path(key), key, pending["content_type"], expires=pending["lifecycle"])
        return Response(status_code=200)

    return [Route("/{path:path}", guarded(state, "signed_put", signed_put), methods=["PUT"])]


def _bearer(state: SandboxState, request: Request) -> Response | None:
    scheme, _, tok = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not tok.strip():
        return _detail(401, "The CDN takes 'Authorization: Bearer <token>' from /storage/auth/token, not a fal key.")
    expires = state.tokens.get(tok.strip())
    if expires is None:
        return _detail(401, "Invalid CDN token")
    if time.time() > expires:
        return _detail(401, "CDN token expired; fetch a new one from /storage/auth/token")
    return None


def _range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(start, end) inclusive for a single satisfiable range, None for the whole file, "bad" if unsatisfiable."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header or "")
    if not m or (not m.group(1) and not m.group(2)):
        return None  # absent, malformed or multi-range: serve the whole file (allowed by RFC 9110)
    if not m.group(1):
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else "bad"
    start = int(m.group(1))
    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    return (start, end) if start < size and start <= end else "bad"


def serve_file(state: SandboxState, request: Request, f: StoredFile) -> Response:
    expired = jobs.expired_status(state, f)
    if expired == 403:  # the signed-URL flavour of an expired output
        return _gcs_error(403, "AccessDenied", "Request has expired.")
    if expired is not None:
        return _detail(expired, "File not found or expired")
    headers = {"accept-ranges": "bytes", "etag": f'"{f.key.split("/")[-2]}-{f.size}"', "cache-control": "no-store"}
    rng = _range(request.headers.get("range"), f.size)
    if rng == "bad":
        return Response(status_code=416, headers={"content-range": f"bytes */{f.size}"})
    start, end, status = 0, f.size - 1, 200
    if isinstance(rng, tuple):
        start, end, status = rng[0], rng[1], 206
        headers["content-range"] = f"bytes {start}-{end}/{f.size}"
    headers["content-length"] = str(end - start + 1)
    if request.method == "HEAD" or f.size == 0:
        return Response(status_code=status, headers=headers, media_type=f.content_type)
    return StreamingResponse(state.store.iter_range(f, start, end), status_code=status, headers=headers,
                             media_type=f.content_type)


def cdn_routes(state: SandboxState) -> list[Route]:
    """``/fal/cdn``: single and multipart uploads (Bearer token), and GET/HEAD of stored files."""

    async def upload(request: Request) -> Response:
        if denied := _bearer(state, request):
            return denied
        name = safe_name(request.headers.get("x-fal-file-name"))
        key = state.store.new_key(name)
        ctype = request.headers.get("content-type") or guess_type(name)
        path = state.store.disk_path(key)
        await _save(request, path)
        state.store.put_file(path, key, ctype, expires=_lifecycle(request))
        return JSONResponse({"access_url": f"{state.base_url}/fal/cdn/{quote(key)}"})

    async def multipart_init(request: Request) -> Response:
        if denied := _bearer(state, request):
            return denied
        name = safe_name(request.headers.get("x-fal-file-name"))
        key = state.store.new_key(name)
        upload_id = secrets.token_hex(12)
        state.uploads[upload_id] = {"key": key, "content_type": request.headers.get("content-type") or guess_type(name),
                                    "parts": {}, "lifecycle": _lifecycle(request)}
        return JSONResponse({"access_url": f"{state.base_url}/fal/cdn/{quote(key)}", "uploadId": upload_id})

    def _upload_for(request: Request) -> dict[str, Any] | None:
        key, upload_id = request.scope["aivp.multipart"]
        up = state.uploads.get(upload_id)
        return up if up is not None and up.get("key") == key else None

    async def multipart_part(request: Request) -> Response:
        if denied := _bearer(state, request):
            return denied
        up = _upload_for(request)
        if up is None:
            return _detail(404, "Unknown multipart upload")
        n = request.scope["aivp.part"]
        path = state.store.root / "multipart" / request.scope["aivp.multipart"][1] / str(n)
        _, md5 = await _save(request, path)
        etag = f'"{md5}"'
        up["parts"][n] = (etag, path)
        return Response(status_code=200, headers={"etag": etag})

    async def multipart_complete(request: Request) -> Response:
        if denied := _bearer(state, request):
            return denied
        up = _upload_for(request)
        if up is None:
            return _detail(404, "Unknown multipart upload")
        try:
            listed = {int(p["partNumber"]): p["etag"] for p in json.loads(await request.body())["parts"]}
        except (ValueError, KeyError, TypeError):
            return _detail(400, "Body must be {\"parts\": [{\"partNumber\": n, \"etag\": \"...\"}]}")
        have = up["parts"]
        if not listed or sorted(listed) != list(range(1, len(listed) + 1)) or set(listed) != set(have):
            return _detail(400, f"Parts must be exactly 1..N as uploaded; uploaded {sorted(have)}, "
                                f"listed {sorted(listed)}")
        if any(listed[n] != have[n][0] for n in listed):
            return _detail(400, "An ETag does not match its uploaded part")
        target = state.store.disk_path(up["key"])
        with target.open("wb") as out:  # in part order, whatever order the client listed them in
            for n in sorted(have):
                with have[n][1].open("rb") as part:
                    shutil.copyfileobj(part, out)
        state.store.put_file(target, up["key"], up["content_type"], expires=up["lifecycle"])
        state.uploads.pop(request.scope["aivp.multipart"][1], None)
        return JSONResponse({"access_url": f"{state.base_url}/fal/cdn/{quote(up['key'])}"})

    async def cdn_get(request: Request) -> Response:
        f = state.store.get(unquote(request.path_params["path"]).strip("/"))
        if f is None:
            return _detail(404, "File not found")
        return serve_file(state, request, f)

    h = {name: guarded(state, name, fn) for name, fn in [
        ("upload", upload), ("multipart_init", multipart_init), ("multipart_part", multipart_part),
        ("multipart_complete", multipart_complete), ("cdn_get", cdn_get)]}

    async def dispatch(request: Request) -> Response:
        path, method = unquote(request.path_params["path"]).strip("/"), request.method
        if method in ("GET", "HEAD"):
            return await h["cdn_get"](request)
        if method == "POST" and path == "files/upload":
            return await h["upload"](request)
        if method == "POST" and path == "files/upload/multipart":
            return await h["multipart_init"](request)
        m = re.fullmatch(r"(files/.+)/multipart/([^/]+)/(\d+|complete)", path)
        if m and (method, m.group(3) == "complete") in (("PUT", False), ("POST", True)):
            request.scope["aivp.multipart"] = (m.group(1), m.group(2))
            if m.group(3) == "complete":
                return await h["multipart_complete"](request)
            request.scope["aivp.part"] = int(m.group(3))
            return await h["multipart_part"](request)
        state.record_request("cdn_other", request)
        return _detail(405, "Method Not Allowed")

    return [Route("/{path:path}", dispatch, methods=["GET", "HEAD", "POST", "PUT"])]


def routes(state: SandboxState) -> list[Mount]:
    """The storage mounts below ``/fal``."""
    return [
        Mount("/rest", routes=rest_routes(state)),
        Mount("/cdn", routes=cdn_routes(state)),
        Mount("/gcs", routes=gcs_routes(state)),
    ]
