"""The provider seam: what every provider (fal, replicate, byteplus) gives the job runner.

A provider turns a native payload into a remote job (`submit` → `Handle`), follows it (`watch`
yields `JobState`s until a terminal one), fetches its output (`result`), cancels it, uploads local
files, and lists the output files of a result. Each provider maps its own status vocabulary to
`JobState` in exactly one function and raises on anything it does not know.

`ProviderBase` declares every member the runner reads, with defaults where a provider may differ
(`upload_ttl_s`, `output_warnings`), and holds what all providers share: the user agent, the auth
header, the polling loop and the wording of refused keys, accounts and rates (401/403/429). Its
facts (key variables, base URLs, dashboard) come from the provider's `ProviderSpec` in the registry.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import anyio

from ..errors import ProviderAuthError, ProviderHTTPError
from .ids import check_request_id, endpoint_segments
from ..registry import ProviderSpec, spec_for
from .http import RetryPolicy, retry_after

if TYPE_CHECKING:
    import httpx

    from ..settings import Settings

USER_AGENT = "aivp/0.1 (+https://github.com/aivp)"
# How long an uploaded file's URL is reused (the runner's jobs.UPLOAD_CACHE_S); a provider whose files
# expire sooner sets its own `upload_ttl_s`.
UPLOAD_TTL_S = 6 * 24 * 3600


@dataclass(frozen=True)
class Queued:
    position: int | None = None


@dataclass(frozen=True)
class Running:
    logs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Completed:
    """The provider says the job is over; `result()` tells success from failure."""

    logs: tuple[str, ...] = ()
    error: str | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class Canceled:
    pass


JobState = Queued | Running | Completed | Canceled


@dataclass(frozen=True)
class Handle:
    """Everything needed to find a remote job again, also after a restart (stored in the ledger)."""

    provider: str
    endpoint: str
    request_id: str
    urls: dict[str, str] = field(default_factory=dict)
    # provider-private facts worth keeping across a restart (e.g. a synchronous provider's answer)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Handle:
        return cls(data["provider"], data["endpoint"], data["request_id"], dict(data.get("urls") or {}),
                   dict(data.get("data") or {}))


@dataclass(frozen=True)
class Lookup:
    """What a search for a lost submit found: one request (its handle), none, several, or no way to look."""

    outcome: Literal["found", "none", "several", "cannot"]
    handle: Handle | None = None
    count: int = 0
    reason: str = ""


@dataclass(frozen=True)
class OutputFile:
    """One file of a result, to be downloaded into the project."""

    url: str
    kind: str  # "image" | "video"
    content_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Result:
    """A successful result: the provider's output JSON and what it billed, when it says."""

    output: dict[str, Any]
    billable_units: float | None = None


class ProviderBase(ABC):
    """What the job runner needs from a provider; subclasses implement the abstract methods.

    A subclass sets `name` (its registry name) and takes `(settings, client)`. Optional members
    have defaults here, so the runner reads every one of them directly.
    """

    name: ClassVar[str]
    auth_scheme: ClassVar[str] = "Bearer"  # the Authorization scheme before the key: "Bearer", fal's "Key"
    upload_ttl_s: ClassVar[float] = UPLOAD_TTL_S  # how long an uploaded file's URL may be reused
    # wording hooks for refused calls (`access_error`): what the provider calls its key, which
    # statuses mean "this account may not", and what such a refusal refused
    credential: ClassVar[str] = "key"
    denied_statuses: ClassVar[tuple[int, ...]] = (403,)
    denied_subject: ClassVar[str] = "account"
    # the format of the provider's request ids, for ids a caller names (adopting a job made elsewhere)
    request_id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
    request_id_example: ClassVar[str] = "a1b2c3"

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.spec: ProviderSpec = spec_for(self.name)
        self.policy = RetryPolicy(settings.retry_attempts, settings.retry_base_s, settings.retry_cap_s)

    @property
    def dashboard(self) -> str:
        """Where a person finds the provider's record of a job."""
        return self.spec.dashboard

    @property
    def upload_scope(self) -> str:
        """Where this provider's uploads live: its base URLs (a sandbox's links are not fal's)."""
        return ",".join(sorted(self.settings.urls.get(self.name, {}).values()))

    def base_url(self, role: str = "api") -> str:
        return self.settings.url(self.name, role)

    def check_endpoint(self, endpoint: str) -> None:
        """Refuse an endpoint id that could steer a keyed request to another path (before anything is recorded)."""
        endpoint_segments(endpoint, self.spec.title)

    def check_request_id(self, request_id: str) -> str:
        """A request id a caller typed, checked against the provider's format before any URL holds it."""
        return check_request_id(request_id, self.request_id_pattern, self.spec.title, self.request_id_example)

    def check_ready(self) -> None:
        """Raise MissingKeyError (saying how to set the key) before anything is recorded or sent."""
        self.settings.require_key(self.name)

    def auth_headers(self, extra: Mapping[str, str] | None = None, /, **more: str) -> dict[str, str]:
        """Authorization (`auth_scheme` + key) and User-Agent, plus any extra headers."""
        key = self.settings.require_key(self.name).get()
        return {"Authorization": f"{self.auth_scheme} {key}", "User-Agent": USER_AGENT, **(extra or {}), **more}

    # ---------------------------------------------------------------- the seam

    async def find_submission(self, endpoint: str, sent: dict[str, Any], since: datetime, until: datetime, *,
                              known: Callable[[str], bool] | None = None) -> Lookup:
        """Look for a request of `endpoint` with input `sent` created between `since` and `until` (a submit whose
        answer was lost), leaving out request ids `known` says are another job's (an identical request sent
        again with fresh=true is not this one). Providers that keep no such list say so."""
        return Lookup("cannot", reason=f"{self.spec.title} keeps no list of requests to look in")

    @abstractmethod
    async def submit(self, endpoint: str, payload: dict[str, Any], *, shape: str | None = None) -> Handle:
        """Send the native payload; the handle finds the job again, also after a restart.

        `shape` is what the endpoint makes (images, image, video), when the caller knows it."""

    @abstractmethod
    def watch(self, handle: Handle) -> AsyncIterator[JobState]:
        """Each new state of the job until a terminal one (Completed or Canceled)."""

    @abstractmethod
    async def result(self, handle: Handle) -> Result:
        """The output of a successful job; raise the job's failure otherwise."""

    @abstractmethod
    async def cancel(self, handle: Handle) -> bool:
        """True when the provider took the cancel, False when the job had already ended."""

    @abstractmethod
    async def upload(self, path: Path, content_type: str) -> str:
        """A URL (or data: URI) of a local file that the provider's models can read."""

    @abstractmethod
    def outputs(self, shape: str, output: dict[str, Any]) -> list[OutputFile]:
        """The files of a result, read by the endpoint's declared shape."""

    def output_warnings(self, shape: str, output: dict[str, Any]) -> list[str]:
        """Parts of a result that failed (one image of a set refused); the runner adds them to the job's warnings."""
        return []

    @abstractmethod
    def handle_for(self, endpoint: str, request_id: str) -> Handle:
        """A handle for a request id made elsewhere (adopting a job submitted outside aivp)."""

    # ---------------------------------------------------------------- shared helpers

    async def poll(self, read: Callable[[], Awaitable[JobState]],
                   last: JobState | None = None) -> AsyncIterator[JobState]:
        """Each new state `read()` returns, until a terminal one.

        Waits poll_initial_s between reads, growing x1.6 up to poll_max_s while nothing changes and
        starting over at every change: a job that moves is followed closely, one that waits costs
        few requests. `last` is the state already reported (so it is not reported twice).
        """
        initial = self.settings.poll_initial_s
        delay = initial
        while True:
            state = await read()
            if state != last:
                last = state
                yield state
                delay = initial
            if isinstance(state, Completed | Canceled):
                return
            await anyio.sleep(delay)
            delay = min(self.settings.poll_max_s, delay * 1.6)

    def access_error(self, r: httpx.Response, message: str, *, what: str | None = None, code: str | None = None,
                     error_type: str | None = None, request_id: str | None = None) -> ProviderHTTPError | None:
        """The error for a refused key (401), account (`denied_statuses`) or rate (429); None for other statuses.

        `message` is the provider's reading of the answer, `code` its error code when it has one
        (shown after the status), and `what` what was being done ("fal refused the submit to ...").
        """
        status = r.status_code
        said = f"{status}{' ' + code if code else ''}: {message}"
        lead = f"{what}: " if what else ""
        title, spec = self.spec.title, self.spec
        ids: dict[str, Any] = {"status_code": status, "error_type": error_type, "request_id": request_id}
        if status == 401:
            where = f"{spec.key_url}, {spec.key_page}" if spec.key_page else spec.key_url
            return ProviderAuthError(f"{lead}{title} rejected the {self.credential} ({said}). Check {spec.key_var} "
                                     f"({where}) and restart the server.", **ids)
        if status in self.denied_statuses:
            return ProviderAuthError(f"{lead}{title} refused the {self.denied_subject} ({said}). "
                                     f"{self.denied_hint(status, code)}", **ids)
        if status == 429:
            wait = retry_after(r)
            hint = f"{title} asks to wait {wait:.0f} s" if wait else "wait a minute"
            return ProviderHTTPError(f"{lead}{title} is rate-limiting this {self.credential} ({said}); {hint}, "
                                     "then try again.", **ids)
        return None

    def denied_hint(self, status: int, code: str | None) -> str:
        """Hook: what to do when the provider refuses the account (usually: the credit is used up)."""
        return f"Check the account's balance and permissions at {self.dashboard}, then try again."


# The name the runner uses for a provider.
Provider = ProviderBase
