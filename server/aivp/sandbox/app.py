"""The sandbox's ASGI app: one Starlette app, one mount per provider, plus ``/_sandbox`` control.

To add a provider (Replicate under ``/replicate``, BytePlus under ``/byteplus``), write a module
with ``ROUTE_NAMES`` (its fault route names) and ``routes(state) -> list[BaseRoute]``, and add it
to `PROVIDERS`. The shared `SandboxState` gives it the job engine, the file store, the fault book
and the submission log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from . import control, fal_queue, fal_storage

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from .state import SandboxState


def fal_routes(state: SandboxState) -> list[BaseRoute]:
    """Everything fal: ``/queue``, ``/rest``, ``/cdn`` and ``/gcs``, to be mounted at ``/fal``."""
    return [Mount("/queue", routes=fal_queue.routes(state)), *fal_storage.routes(state)]


FAL_ROUTE_NAMES = (*fal_queue.ROUTE_NAMES, *fal_storage.ROUTE_NAMES)

# prefix -> (fault route names, routes factory)
PROVIDERS: dict[str, tuple[tuple[str, ...], Callable[[SandboxState], list[BaseRoute]]]] = {
    "fal": (FAL_ROUTE_NAMES, fal_routes),
}


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


def build_app(state: SandboxState) -> ASGIApp:
    routes: list[BaseRoute] = [Mount(f"/{prefix}", routes=factory(state)) for prefix, (_, factory) in PROVIDERS.items()]
    routes.append(Mount("/_sandbox", routes=control.routes(state)))
    return _ExposeConnection(Starlette(routes=routes))
