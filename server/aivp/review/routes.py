"""The review page's HTTP routes, for `aivp review` and for mounting in another Starlette app.

    GET  /                 the page (the view is chosen by #candidates/3, #clips, #board)
    POST /api/call         {"name", "arguments"} -> the tool's CallToolResult as MCP sends it
    POST /api/read         {"uri"} -> the ReadResourceResult (aivp://review/, thumb/, preview/, files/ only)
    GET  /files/<path>     a project file through the containment check, with HTTP range requests (served
                           as `http.files` serves downloads: images, video and audio inline, anything else
                           as an attachment, no sniffing, so a project file never runs as a page here)

The routes hold no auth of their own: `aivp review` wraps them in `TokenGate` (auth.py); a server that
mounts them puts its own auth in front. All URLs in the page are relative, so they work under a prefix
that ends in a slash. Mounting them in another Starlette app (`aivp serve --http` does, in cli.py):

    slot = Slot()                                    # filled in that app's lifespan:
    #   async with Client(build_server(settings)) as c: slot.backend = ClientBackend(c); yield
    create_app(..., routes=[Mount("/review", routes=review_routes(slot, settings.project_dir))],
               route_scope=GENERATE, page_prefix="/review/", lifespan=...)
    # behind the app's auth, with one-time links and a session cookie for the browser (http/sessions.py)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..http.files import file_response
from ..project import Project
from .page import page_html

log = logging.getLogger("aivp.review")

# What the page may call: the tools the review needs, nothing that takes arbitrary inputs from elsewhere.
TOOLS = frozenset({"list_candidates", "generate_candidates", "manage_candidates", "run_storyboard", "generate_video",
                   "queue_status", "mark_clip"})
RESOURCES = ("aivp://review/", "aivp://thumb/", "aivp://preview/", "aivp://files/")
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; "
            "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class Backend(Protocol):
    """Where the page's calls go: an MCP client of an aivp server (see ClientBackend), or anything that
    answers the same two requests with the MCP wire shapes (camelCase JSON)."""

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]: ...

    async def read_resource(self, uri: str) -> dict[str, Any]: ...


@dataclass
class ClientBackend:
    """A Backend over an `mcp.Client` (in memory, stdio or HTTP): every action is an ordinary tool call."""

    client: Any

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.client.call_tool(name, arguments)
        return dict(result.model_dump(mode="json", by_alias=True, exclude_none=True))

    async def read_resource(self, uri: str) -> dict[str, Any]:
        result = await self.client.read_resource(uri)
        return dict(result.model_dump(mode="json", by_alias=True, exclude_none=True))


@dataclass
class Slot:
    """A Backend that exists only while a server runs (set in its lifespan)."""

    backend: Backend | None = None

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        assert self.backend is not None, "the review server has not started"
        return await self.backend.call_tool(name, arguments)

    async def read_resource(self, uri: str) -> dict[str, Any]:
        assert self.backend is not None, "the review server has not started"
        return await self.backend.read_resource(uri)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any] | None:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return None
    try:
        data = json.loads(await request.body())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def review_routes(backend: Backend, project_root: Path) -> list[BaseRoute]:
    """The page, its API and the project's media. `backend` answers tool calls and resource reads."""
    project = Project(project_root)

    async def page(request: Request) -> Response:
        return HTMLResponse(page_html("board", "http"), headers={"content-security-policy": PAGE_CSP,
                                                                 "cache-control": "no-store"})

    async def call(request: Request) -> Response:
        body = await _body(request)
        if body is None or not isinstance(body.get("name"), str) or not isinstance(body.get("arguments", {}), dict):
            return _error(400, 'Send JSON {"name": tool, "arguments": {...}}.')
        if body["name"] not in TOOLS:
            return _error(403, f"The review page does not call {body['name']!r}; it calls {', '.join(sorted(TOOLS))}.")
        try:
            return JSONResponse(await backend.call_tool(body["name"], body.get("arguments") or {}))
        except Exception as exc:  # the client's own error (unknown tool, bad arguments): say it
            log.info("review call %s failed: %s", body["name"], exc)
            return _error(502, str(exc))

    async def read(request: Request) -> Response:
        body = await _body(request)
        uri = body.get("uri") if body else None
        if not isinstance(uri, str) or not uri.startswith(RESOURCES):
            return _error(403, f"The review page reads only {', '.join(RESOURCES)} resources.")
        try:
            return JSONResponse(await backend.read_resource(uri))
        except Exception as exc:
            return _error(404, str(exc))

    async def files(request: Request) -> Response:
        raw = request.path_params["path"]
        if "range" in request.headers:
            log.debug("range %s for %s", request.headers["range"], raw)
        response = file_response(project, raw)  # the project root only, no hidden files or links out
        response.headers["cache-control"] = "no-cache"  # a file made again at the same path shows at once
        return response

    return [Route("/", page, methods=["GET"]), Route("/api/call", call, methods=["POST"]),
            Route("/api/read", read, methods=["POST"]), Route("/files/{path:path}", files, methods=["GET", "HEAD"])]
