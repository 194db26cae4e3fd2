"""Project files over HTTP: GET/HEAD /files/<project path>, with Range requests (so a video seeks).

Every path goes through `Project`'s containment check (inside the project root; never `.aivp/`, a hidden
file or a link out of the project); anything else is a plain 404 that names nothing on disk. Images,
video and audio are shown inline; other files (HTML, SVG, JSON ...) download as attachments, and every
response forbids sniffing and scripts, so a file in the project can never act as a page of this server.

`file_response()` and `files_route()` are reusable: the review UI serves its media with them. Auth is not
decided here: `app.create_app` puts these routes behind `guard.Protected` (a token or a signed link).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
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
