"""`Sandbox`: the sandbox server as a Python object (tests), and `serve()` in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Iterable

from .app import build_app, route_names
from .app import env as _env  # every provider's variables, not only fal's
from .faults import Fault
from .jobs import Job
from .state import Config, RequestRecord, SandboxState, Submission

LOOPBACK = ("127.0.0.1", "localhost")


class Sandbox:
    """A local stand-in for fal (queue, storage, CDN), Replicate and BytePlus ModelArk on 127.0.0.1
    that renders placeholder media.

        with Sandbox() as sb:
            os.environ.update(sb.env())
            ...                             # run the client under test
            assert sb.submission_count() == 1

    `start()` runs uvicorn in a daemon thread and returns once it accepts connections. Everything
    else (faults, config, the submission log) can be used from any thread while it runs.
    """

    def __init__(
        self,
        port: int = 0,
        keys: Iterable[str] | None = None,
        queue_s: float = 0.1,
        image_s: float = 0.3,
        video_s: float = 1.0,
        output_ttl_s: float | None = None,
    ) -> None:
        self.port = port
        self._tmp = tempfile.mkdtemp(prefix="aivp-sandbox-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        defaults = Config(queue_s=queue_s, image_s=image_s, video_s=video_s, output_ttl_s=output_ttl_s)
        self.state = SandboxState(Path(self._tmp), keys=set(keys) if keys else None, defaults=defaults,
                                  route_names=route_names())
        self.app = build_app(self.state)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        # proto must be IPPROTO_TCP (not 0): only then does asyncio set TCP_NODELAY on accepted
        # connections, without which every keep-alive request waits ~40 ms for a delayed ACK
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))  # loopback only, always
        self.port = sock.getsockname()[1]
        self.state.base_url = f"http://127.0.0.1:{self.port}"
        return sock

    def _uvicorn(self, **overrides: Any) -> Any:
        import uvicorn

        options: dict[str, Any] = dict(log_level="warning", access_log=False, http="h11", ws="none",
                                       lifespan="off", timeout_graceful_shutdown=1)
        options.update(overrides)
        return uvicorn.Server(uvicorn.Config(self.app, **options))

    def start(self) -> Sandbox:
        if self._thread is not None:
            raise RuntimeError("this sandbox is already running")
        sock = self._bind()
        self._server = self._uvicorn()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve(sockets=[sock])),
                                        name=f"aivp-sandbox-{self.port}", daemon=True)
        self._thread.start()
        for _ in range(1000):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            self._thread.join(0.01)
        raise RuntimeError(f"the sandbox did not start on {self.url}")

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(5)
        if self._thread.is_alive():  # a stalled connection outlived the graceful shutdown
            self._server.force_exit = True
            self._thread.join(5)
        self._thread = None
        self._cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.state.base_url

    @property
    def fal_queue_url(self) -> str:
        return f"{self.url}/fal/queue"

    @property
    def fal_rest_url(self) -> str:
        return f"{self.url}/fal/rest"

    @property
    def fal_cdn_url(self) -> str:
        return f"{self.url}/fal/cdn"

    @property
    def fal_api_url(self) -> str:
        return f"{self.url}/fal/api"

    @property
    def platform(self) -> Any:
        """The platform API's planted drift (`platform_docs.Drift`): gone, status, price, drop_values, drop_fields."""
        return self.state.platform

    @property
    def replicate_url(self) -> str:
        return f"{self.url}/replicate"

    @property
    def ark_url(self) -> str:
        return f"{self.url}/byteplus/api/v3"

    def env(self) -> dict[str, str]:
        """AIVP_FAL_QUEUE_URL, AIVP_FAL_REST_URL, AIVP_FAL_CDN_URL, AIVP_FAL_API_URL, AIVP_REPLICATE_URL, AIVP_ARK_URL
        and AIVP_SANDBOX=1 (these providers are the sandbox: placeholders, no charge)."""
        return _env(self.url)

    # -- what happened ---------------------------------------------------------------------

    @property
    def submissions(self) -> list[Submission]:
        with self.state.lock:
            return list(self.state.submissions)

    def submission_count(self, endpoint: str | None = None, provider: str | None = None) -> int:
        """Accepted submits (fal submits, Replicate creates, BytePlus generations), optionally of one provider."""
        if provider is None:
            return self.state.submission_count(endpoint)
        return sum(1 for s in self.submissions if s.provider == provider and endpoint in (None, s.endpoint))

    @property
    def requests(self) -> list[RequestRecord]:
        with self.state.lock:
            return list(self.state.requests)

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def job(self, request_id: str) -> Job:
        """The sandbox's view of a request (phase, payload, logs, files, failure)."""
        return self.state.jobs[request_id]

    # -- misbehaviour ----------------------------------------------------------------------

    def fault(
        self,
        route: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        action: str = "respond",
        times: int | None = 1,
        delay: float = 0.0,
        preset: str | None = None,
        after: bool = False,
        match: str | None = None,
        cut_at: int | None = None,
    ) -> Fault:
        """Arm a fault for the next `times` requests to `route` (None: until reset). See `faults`."""
        return self.state.faults.arm(route, status=status, headers=headers, body=body,
                                     action=None if preset and action == "respond" else action,
                                     times=times, delay=delay or None, preset=preset, after=after or None,
                                     match=match, cut_at=cut_at)

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def expire_outputs(self, status: int | None = 404) -> None:
        """Generated outputs (made so far and from now on, until reset) answer `status` on GET; None undoes it."""
        self.state.configure(expire_status=status)

    def stick_queue(self, stuck: bool = True) -> None:
        """While stuck, jobs stay IN_QUEUE until released or cancelled."""
        self.state.configure(stuck=stuck)

    def configure(self, **settings: Any) -> None:
        """Change `Config` fields: queue_s, image_s, video_s, queue_depth, output_bytes, token_ttl_s ..."""
        self.state.configure(**settings)

    def reset(self) -> None:
        """Faults cleared, config back to the constructor's, submission and request logs emptied.
        Jobs and stored files stay, so URLs handed out earlier keep working."""
        self.state.reset()

    def __repr__(self) -> str:
        return f"<Sandbox {self.url} running={self._thread is not None}>"


def serve(host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
    """Run a sandbox in the foreground until interrupted (the `aivp sandbox` command)."""
    if host not in LOOPBACK:
        raise ValueError(f"the sandbox binds 127.0.0.1 only (asked for {host!r})")
    sb = Sandbox(port=port, **options)
    sock = sb._bind()
    lines = [
        f"aivp sandbox on {sb.url}  (fal, Replicate, BytePlus; everything it makes is a PLACEHOLDER)",
        f"  fal queue  {sb.fal_queue_url}",
        f"  fal rest   {sb.fal_rest_url}",
        f"  fal cdn    {sb.fal_cdn_url}",
        f"  fal api    {sb.fal_api_url}  (model search, schemas, prices)",
        f"  replicate  {sb.replicate_url}",
        f"  byteplus   {sb.ark_url}",
        f"  control    {sb.url}/_sandbox/  (stats, faults, config, reset)",
        "point aivp at it with:",
        *(f"  export {k}={v}" for k, v in sb.env().items()),
        "  export FAL_KEY=sandbox REPLICATE_API_TOKEN=sandbox ARK_API_KEY=sandbox  # any non-empty key is accepted",
    ]
    print("\n".join(lines), flush=True)
    server = sb._uvicorn(log_level="info", access_log=True)
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that kills
        # the process before `finally` can remove the sandbox's temp dir, so make it an exit instead
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.run(sockets=[sock])
    finally:
        sb._cleanup()
        print("aivp sandbox stopped", file=sys.stderr)
