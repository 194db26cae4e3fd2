"""Project files over HTTP: GET/HEAD /files/<project path>, with Range requests (so a video seeks), and
PUT /files/<project path> to put an input into the project (bigger than a 4 MiB request could carry).

Every path goes through `Project`'s containment check (inside the project root; never `.aivp/`, a hidden
file or a link out of the project); anything else is a plain 404 that names nothing on disk. Images,
video and audio are shown inline; other files (HTML, SVG, JSON ...) download as attachments, and every
response forbids sniffing and scripts, so a file in the project can never act as a page of this server.

An upload streams to a hidden temporary file beside its target (at most AIVP_MAX_UPLOAD_MB) and is then
placed like every output: never over an existing file unless `?overwrite=true`, else as name-2, -3 ...;
the answer names the path it got. A generation call then takes that path as its input.

`file_response()` and `files_route()` are reusable: the review UI serves its media with them. Auth is not
decided here: `app.create_app` puts these routes behind `guard.Protected` (reading: a token or a signed
link; uploading: a token with aivp:generate).
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import quote

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..errors import AivpError
from ..project import Project
from .links import inline, mime_type

SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
    "Cache-Control": "private, max-age=300",
    "Referrer-Policy": "no-referrer",
}


def file_response(project: Project, rel: str) -> Response:
    """A project file as a response (Range, If-Range, ETag and HEAD handled by Starlette), or a 404."""
    try:
        path = project.output_path(rel)  # the project root only; refuses .aivp/, hidden files and links out
    except AivpError:
        path = None
    if path is None or not path.is_file():
        return PlainTextResponse("Not found", status_code=404, headers=SAFE_HEADERS)
    media = mime_type(path.name)
    return FileResponse(path, media_type=media, headers=SAFE_HEADERS, filename=path.name,
                        content_disposition_type="inline" if inline(media) else "attachment")


def files_route(project: Project, path: str = "/files/{path:path}") -> Route:
    """The download route for one project (unprotected: wrap it in `guard.Protected`, as `create_app` does)."""

    async def download(request: Request) -> Response:
        return file_response(project, request.path_params["path"])

    return Route(path, download, methods=["GET", "HEAD"], name="files")


def upload_route(project: Project, max_bytes: int, path: str = "/files/{path:path}") -> Route:
    """PUT a file into the project (unprotected: `create_app` wraps it in `guard.Protected` for aivp:generate)."""

    async def upload(request: Request) -> Response:
        rel = request.path_params["path"]
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            return _too_big(max_bytes)
        try:
            final = project.output_path(rel)
            tmp = project.temp_beside(final, "upload-" + secrets.token_hex(4))
        except (AivpError, OSError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if final.is_dir():
            return JSONResponse({"error": f"{rel!r} is a folder; name a file."}, status_code=400)
        size, digest = 0, hashlib.sha256()
        try:
            async with await anyio.open_file(tmp, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_bytes:
                        raise _TooBig
                    digest.update(chunk)
                    await out.write(chunk)
            placed = project.place(tmp, final, overwrite=request.query_params.get("overwrite") in ("1", "true"))
        except _TooBig:
            return _too_big(max_bytes)
        except ClientDisconnect:
            return PlainTextResponse("The upload was cut off.", status_code=400)
        finally:
            tmp.unlink(missing_ok=True)
        where = project.rel(placed)
        return JSONResponse({"path": where, "bytes": size, "sha256": digest.hexdigest(),
                             "uri": "aivp://files/" + quote(where)}, status_code=201)

    return Route(path, upload, methods=["PUT"], name="upload")


class _TooBig(Exception):
    pass


def _too_big(max_bytes: int) -> Response:
    return JSONResponse({"error": f"The file is larger than {max_bytes // (1024 * 1024)} MiB (AIVP_MAX_UPLOAD_MB)."},
                        status_code=413)
