"""The sandbox's ASGI app: one Starlette app, one mount per provider, plus ``/_sandbox`` control.

Each provider is a module with ``ROUTE_NAMES`` (its fault route names) and ``routes(state) ->
list[BaseRoute]``, listed in `PROVIDERS` under its prefix (fal under ``/fal``, Replicate under
``/replicate``, BytePlus under ``/byteplus``); `env()` names the variables that point aivp at each.
The shared `SandboxState` gives every provider the job engine, the file store, the fault book and
the submission log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from . import byteplus, control, fal_queue, fal_storage, platform, replicate

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from .state import SandboxState


def fal_routes(state: SandboxState) -> list[BaseRoute]:
    """Everything fal: ``/queue``, ``/rest``, ``/cdn``, ``/gcs`` and the platform ``/api``, to be mounted at ``/fal``."""
    return [Mount("/queue", routes=fal_queue.routes(state)), Mount("/api", routes=platform.routes(state)),
            *fal_storage.routes(state)]


FAL_ROUTE_NAMES = (*fal_queue.ROUTE_NAMES, *fal_storage.ROUTE_NAMES, *platform.ROUTE_NAMES)

# prefix -> (fault route names, routes factory)
PROVIDERS: dict[str, tuple[tuple[str, ...], Callable[[SandboxState], Sequence[BaseRoute]]]] = {
    "fal": (FAL_ROUTE_NAMES, fal_routes),
    "replicate": (replicate.ROUTE_NAMES, replicate.routes),
    "byteplus": (byteplus.ROUTE_NAMES, byteplus.routes),
}
# prompt directives beyond the engine's own (control.py lists those)
DIRECTIVES = ("[sandbox:interrupted]", "[sandbox:refuse-image=N]")


def env(base_url: str) -> dict[str, str]:
    """The environment variables that point aivp's clients (fal, Replicate, BytePlus) at a sandbox."""
    return {**control.env(base_url), "AIVP_REPLICATE_URL": f"{base_url}/replicate",
            "AIVP_ARK_URL": f"{base_url}/byteplus/api/v3", "AIVP_SANDBOX": "1"}


def route_names() -> frozenset[str]:
    """Every route name a fault can target, across providers."""
    return frozenset(n for names, _ in PROVIDERS.values() for n in names)


class _ExposeConnection:
    """Outermost ASGI layer: puts uvicorn's connection into the scope so a fault can close it.

    A plain ASGI app cannot drop a connection without answering (uvicorn would send a 500), and
    "the connection died" is exactly what the client's retry logic must be tested against.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cycle = getattr(send, "__self__", None)  # uvicorn's RequestResponseCycle
        if scope["type"] == "http" and hasattr(cycle, "transport") and hasattr(cycle, "disconnected"):
            scope["aivp.cycle"] = cycle
        await self.app(scope, receive, send)


def control_routes(state: SandboxState) -> list[BaseRoute]:
    """The control API, whose index names every provider's variables and directives, not only fal's."""
    routes = control.routes(state)
    index = next(r for r in routes if isinstance(r, Route) and r.path == "/")

    async def full_index(request: Any) -> JSONResponse:
        body = json.loads((await index.endpoint(request)).body)
        body["env"] = env(state.base_url)
        body["prompt_directives"] = [*body.get("prompt_directives", []), *DIRECTIVES]
        return JSONResponse(body)

    return [Route("/", full_index, methods=["GET"]), *(r for r in routes if r is not index)]


def build_app(state: SandboxState) -> ASGIApp:
    routes: list[BaseRoute] = [Mount(f"/{prefix}", routes=factory(state)) for prefix, (_, factory) in PROVIDERS.items()]
    routes.append(Mount("/_sandbox", routes=control_routes(state)))
    return _ExposeConnection(Starlette(routes=routes))
