"""The provider seam: what every provider (fal, replicate, byteplus) gives the job runner.

A provider turns a native payload into a remote job (`submit` → `Handle`), follows it (`watch`
yields `JobState`s until a terminal one), fetches its output (`result`), cancels it, uploads local
files, and lists the output files of a result. Each provider maps its own status vocabulary to
`JobState` in exactly one function and raises on anything it does not know.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol


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


class Provider(Protocol):
    """What the job runner needs from a provider."""

    name: str

    def check_ready(self) -> None:
        """Raise MissingKeyError (saying how to set the key) before anything is recorded or sent."""
        ...

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> Handle: ...

    def watch(self, handle: Handle) -> AsyncIterator[JobState]: ...

    async def result(self, handle: Handle) -> Result: ...

    async def cancel(self, handle: Handle) -> bool: ...

    async def upload(self, path: Path, content_type: str) -> str: ...

    def outputs(self, shape: str, output: dict[str, Any]) -> list[OutputFile]: ...

    # Optional: `output_warnings(shape, output) -> list[str]` for parts of a result that failed
    # (one image of a sequential set refused); the runner adds them to the job's warnings.

    def handle_for(self, endpoint: str, request_id: str) -> Handle: ...
