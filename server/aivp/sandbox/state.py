"""Everything one sandbox remembers, shared by its provider routes, its control API and `Sandbox`.

The server runs on its own event loop (in a background thread under tests) while tests read and
change this state from their own thread. Writes that must be atomic (taking a fault, appending a
record) go through `lock`; plain attribute reads and writes are safe under the GIL.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .faults import FaultBook
from .platform_docs import Drift
from .storage import FileStore

if TYPE_CHECKING:
    from starlette.requests import Request

    from .jobs import Job


MAX_REQUEST_RECORDS = 50_000


@dataclass
class Config:
    """Knobs tests turn. `Sandbox.configure()` and `POST /_sandbox/config` set these."""

    queue_s: float = 0.1  # time a job spends IN_QUEUE
    image_s: float = 0.3  # time an image job spends IN_PROGRESS (at least; rendering may take longer)
    video_s: float = 1.0  # same for video jobs
    queue_depth: int = 2  # queue_position a new job starts at; it counts down to 0
    stuck: bool = False  # jobs stay IN_QUEUE until this is cleared or they are cancelled
    cancel_ignored: bool = False  # "race mode": cancel answers 202 but the job still succeeds
    expire_status: int | None = None  # generated outputs answer this status on GET (404, 403, 410)
    output_ttl_s: float | None = None  # generated outputs expire this long after they were made
    output_bytes: int | None = None  # huge-output mode: outputs are N filler bytes, streamed
    token_ttl_s: float = 3600.0  # lifetime of CDN upload tokens
    signed_url_ttl_s: float = 3600.0  # lifetime of signed PUT URLs from /storage/upload/initiate

    def update(self, **changes: Any) -> Config:
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown sandbox setting(s) {unknown}; known: {sorted(names)}")
        # coerce here (values may come from JSON over HTTP) so a bad one fails the call, not a job later
        clean: dict[str, Any] = {}
        for k, v in changes.items():
            if v is None and k in _OPTIONAL:
                clean[k] = None
            elif isinstance(getattr(Config, k), bool):  # the class attribute is the field's default
                if not isinstance(v, bool):
                    raise ValueError(f"{k} must be true or false")
                clean[k] = v
            elif k in ("queue_depth", "expire_status", "output_bytes"):
                clean[k] = int(v)
            else:
                clean[k] = float(v)
        return replace(self, **clean)


_OPTIONAL = ("expire_status", "output_ttl_s", "output_bytes")


@dataclass(frozen=True)
class Submission:
    """One accepted submit: the key test oracle ("exactly one submission")."""

    endpoint: str
    request_id: str
    payload: dict[str, Any]
    headers: dict[str, str]
    query: dict[str, str]
    at: float  # time.time()
    provider: str = "fal"


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request to a provider route (faulted or not), in arrival order."""

    route: str
    method: str
    path: str
    headers: dict[str, str]
    at: float
    query: dict[str, str] = field(default_factory=dict)

    @property
    def authorization_sent(self) -> bool:
        # tests use this on signed_put records: the fal key must never reach the signed-URL host
        return "authorization" in self.headers


class SandboxState:
    """The mutable heart of a sandbox: config, faults, jobs, files, and what was received."""

    def __init__(self, root: Path, *, keys: set[str] | None, defaults: Config, route_names: frozenset[str]):
        self.lock = threading.RLock()
        self.keys = set(keys) if keys else None
        self.defaults = defaults
        self.config = replace(defaults)
        self.faults = FaultBook(route_names)
        self.store = FileStore(root)
        self.jobs: dict[str, Job] = {}
        self.submissions: list[Submission] = []
        self.requests: list[RequestRecord] = []  # the newest MAX_REQUEST_RECORDS
        self.request_count = 0
        self.base_url = "http://127.0.0.1"  # set once the socket is bound
        self.secret = secrets.token_bytes(16)  # signs the fake GCS upload URLs
        self.tokens: dict[str, float] = {}  # CDN token -> expiry (time.time())
        self.uploads: dict[str, Any] = {}  # multipart and signed uploads in flight
        self._tasks: set[Any] = set()  # job drivers; kept so they are not garbage-collected
        self.platform = Drift()  # what tests changed in the platform API's answers (model drift)

    # -- recording -------------------------------------------------------------------------

    def record_request(self, route: str, request: Request) -> None:
        rec = RequestRecord(
            route=route,
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            at=time.time(),
            query=dict(request.query_params),
        )
        with self.lock:
            self.requests.append(rec)
            self.request_count += 1
            if len(self.requests) > MAX_REQUEST_RECORDS:  # a long `aivp sandbox` run polls a lot
                del self.requests[: len(self.requests) - MAX_REQUEST_RECORDS]

    def record_submission(self, sub: Submission) -> None:
        with self.lock:
            self.submissions.append(sub)

    def submission_count(self, endpoint: str | None = None) -> int:
        with self.lock:
            return sum(1 for s in self.submissions if endpoint is None or s.endpoint == endpoint)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            by_endpoint: dict[str, int] = {}
            for s in self.submissions:
                by_endpoint[s.endpoint] = by_endpoint.get(s.endpoint, 0) + 1
            by_route: dict[str, int] = {}
            for r in self.requests:
                by_route[r.route] = by_route.get(r.route, 0) + 1
            return {
                "submissions": len(self.submissions),
                "by_endpoint": by_endpoint,
                "requests": self.request_count,
                "by_route": by_route,
                "signed_put_with_authorization": sum(
                    1 for r in self.requests if r.route == "signed_put" and r.authorization_sent
                ),
                "jobs": len(self.jobs),
                "faults_pending": len(self.faults.pending()),
            }

    # -- control ---------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        with self.lock:
            self.config = self.config.update(**changes)

    def reset(self) -> None:
        """Faults cleared, config back to the constructor's, counters emptied; jobs and files stay."""
        with self.lock:
            self.faults.clear()
            self.config = replace(self.defaults)
            self.submissions.clear()
            self.requests.clear()
            self.request_count = 0
            self.platform.clear()

    def track(self, task: Any) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
