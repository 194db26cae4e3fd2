"""The HTTP control API under ``/_sandbox``: what `aivp demo`, `aivp sandbox` and out-of-process
tests use where in-process tests call `Sandbox` methods.

    GET  /_sandbox/             index: base URLs, env vars, fault routes and presets
    GET  /_sandbox/stats        {"submissions": n, "by_endpoint": {...}, "requests": n, ...}
    GET  /_sandbox/submissions  every submission (payloads; the Authorization value is masked)
    GET  /_sandbox/faults       armed faults;  DELETE clears them
    POST /_sandbox/faults       {"route": "status", "status": 503, "times": 2, ...} or a list of them
    POST /_sandbox/config       {"queue_s": 2, "stuck": true, "expire_status": 404, "output_bytes": N, ...}
    POST /_sandbox/reset        faults cleared, config back to defaults, counters emptied
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import ACTIONS, PRESETS

if TYPE_CHECKING:
    from starlette.requests import Request

    from .state import SandboxState

FAULT_FIELDS = ("status", "headers", "body", "action", "times", "delay", "after", "match", "cut_at", "preset")


def env(base_url: str) -> dict[str, str]:
    """The environment variables that point aivp's fal client at a sandbox."""
    return {
        "AIVP_FAL_QUEUE_URL": f"{base_url}/fal/queue",
        "AIVP_FAL_REST_URL": f"{base_url}/fal/rest",
        "AIVP_FAL_CDN_URL": f"{base_url}/fal/cdn",
        "AIVP_FAL_API_URL": f"{base_url}/fal/api",
    }


def _masked(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if k in ("authorization", "cookie") else v) for k, v in headers.items()}


def routes(state: SandboxState) -> list[Route]:
    """The control routes, to be mounted at ``/_sandbox``."""

    async def _json(request: Request) -> Any:
        raw = await request.body()
        return json.loads(raw) if raw.strip() else {}

    def _bad(msg: str) -> JSONResponse:
        return JSONResponse({"detail": msg}, status_code=400)

    async def index(request: Request) -> Response:
        return JSONResponse({
            "what": "aivp sandbox: a local stand-in for provider APIs; everything it makes is a PLACEHOLDER",
            "url": state.base_url,
            "env": env(state.base_url),
            "fault_routes": sorted(state.faults.route_names),
            "fault_actions": list(ACTIONS),
            "fault_presets": sorted(PRESETS),
            "prompt_directives": ["[sandbox:unsafe]", "[sandbox:unsafe-image]", "[sandbox:slow=SECONDS]",
                                  "[sandbox:queue=SECONDS]", "[sandbox:stuck]", "[sandbox:error=500|503|504]",
                                  "[sandbox:bytes=N]"],
            "config": asdict(state.config),
        })

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats())

    async def submissions(request: Request) -> Response:
        return JSONResponse([
            {"endpoint": s.endpoint, "request_id": s.request_id, "payload": s.payload, "provider": s.provider,
             "headers": _masked(s.headers), "query": s.query, "at": s.at}
            for s in list(state.submissions)
        ])

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse([f.to_json() for f in state.faults.pending()])
        if request.method == "DELETE":
            state.faults.clear()
            return JSONResponse({"ok": True})
        try:
            body = await _json(request)
            armed = []
            for spec in body if isinstance(body, list) else [body]:
                unknown = sorted(set(spec) - {"route", *FAULT_FIELDS})
                if unknown:
                    return _bad(f"unknown fault field(s) {unknown}; known: route, {', '.join(FAULT_FIELDS)}")
                kw = {k: spec[k] for k in FAULT_FIELDS if k in spec}
                armed.append(state.faults.arm(spec["route"], **kw).to_json())
        except (ValueError, KeyError, TypeError) as exc:
            return _bad(f"bad fault: {exc}")
        return JSONResponse(armed)

    async def config(request: Request) -> Response:
        try:
            state.configure(**await _json(request))
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
        return JSONResponse(asdict(state.config))

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    return [
        Route("/", index, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/submissions", submissions, methods=["GET"]),
        Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/config", config, methods=["POST"]),
        Route("/reset", reset, methods=["POST"]),
    ]
