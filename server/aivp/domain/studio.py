"""The long-lived things every domain operation works with: settings, the project, the ledger, the runner.

A `Studio` is built once per server process (the MCP lifespan builds it; so do the CLI commands and
the review server) and handed to the domain functions explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..jobs import JobRunner
from ..ledger import Ledger, now_iso
from ..project import Project
from ..settings import Settings


@dataclass
class Studio:
    """One project as a server process sees it."""

    settings: Settings
    project: Project
    ledger_or_error: Ledger | Exception
    runner_or_none: JobRunner | None
    runs: dict[str, Any] = field(default_factory=dict)  # the storyboard run, while the server lives
    live: Any = None  # the live model catalog (domain/live.py), built on first use: never at start-up
    started_at: str = field(default_factory=now_iso)  # when this server started: a session's spend counts from here
    # Who is asking: a remote caller's token subject, set per tool call (tools/common.state_of); None = a local client.
    # Jobs record it as started_by. The other fields are shared, so a per-call copy sees the same runs and runner.
    caller: str | None = None

    @property
    def ledger(self) -> Ledger:
        if isinstance(self.ledger_or_error, Exception):
            raise ConfigError(
                f"aivp cannot keep its job ledger in {self.project.state_dir} ({self.ledger_or_error}). Start the "
                "server with --project pointing at a writable project folder, or set AIVP_PROJECT_DIR."
            )
        return self.ledger_or_error

    @property
    def runner(self) -> JobRunner:
        _ = self.ledger
        assert self.runner_or_none is not None
        return self.runner_or_none

    @property
    def providers(self) -> set[str]:
        """The providers this process can call (all of them load, with or without a key)."""
        return set(self.runner_or_none.providers) if self.runner_or_none is not None else set()

    def budget(self) -> float | None:
        """The spending cap: AIVP_BUDGET_USD, else aivp.toml's budget_usd, else none."""
        if self.settings.budget_usd is not None:
            return self.settings.budget_usd
        from ..project_config import load_config

        return load_config(self.project.root).budget_usd
