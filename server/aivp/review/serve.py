"""Running the review page for one project on 127.0.0.1: `aivp review`, and tests (in a thread)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from .auth import TokenGate
from .routes import Backend, Slot, review_routes

OpenBackend = Callable[[], AbstractAsyncContextManager[Backend]]


class ReviewServer:
    """The review page with its API, behind the one-time token, on a loopback port (a free one by default).

    `open_backend` is entered once when the server starts (it builds the aivp server the page talks to)
    and left when it stops.
    """

    def __init__(self, project_root: Path, open_backend: OpenBackend, port: int = 0) -> None:
        self.root, self.open_backend, self.port = project_root, open_backend, port
        self.sock = self._bind()
        self.token = secrets.token_urlsafe(24)
        slot = Slot()

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with self.open_backend() as backend:
                slot.backend = backend
                try:
                    yield
                finally:
                    slot.backend = None

        self.app = Starlette(routes=review_routes(slot, project_root), lifespan=lifespan,
                             middleware=[Middleware(TokenGate, port=self.port, token=self.token)])
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY on accept
        sock.bind(("127.0.0.1", self.port))  # loopback only, always
        sock.listen(128)  # a browser opening the printed link waits in the backlog until uvicorn serves
        self.port = sock.getsockname()[1]
        return sock

    @property
    def link(self) -> str:
        """The one-time link to print (and open)."""
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def _uvicorn(self, log_level: str) -> Any:
        import uvicorn

        config = uvicorn.Config(self.app, log_level=log_level, access_log=False, http="h11", ws="none",
                                lifespan="on", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        return self._server

    def serve_forever(self, log_level: str = "warning") -> None:
        """Serve in this thread until interrupted (Ctrl-C)."""
        self._uvicorn(log_level).run(sockets=[self.sock])

    def start(self) -> ReviewServer:
        """Serve in a daemon thread; returns once it accepts connections."""
        server = self._uvicorn("warning")
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[self.sock])),
                                        name=f"aivp-review-{self.port}", daemon=True)
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the review server did not start on port {self.port}")
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._thread = None
        self.sock.close()
