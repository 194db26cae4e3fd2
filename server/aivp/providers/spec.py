"""What aivp knows about a provider before any of its code is loaded: the facts, as data.

A `ProviderSpec` names the provider's class ("module:Class", imported only when the server builds
its providers), the environment variables its key may come from, where a person gets a key, its
base URLs (each overridable by an `AIVP_*_URL` variable) and the page that lists its jobs.
`settings.py` reads keys and URLs from these specs, so this module imports nothing but the
standard library: settings, the catalog and cold start depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BaseUrl:
    """One base URL of a provider, overridable by an environment variable (a sandbox, a proxy)."""

    env: str  # e.g. AIVP_FAL_QUEUE_URL
    default: str
    about: str  # what it is, for the settings table: "fal queue base URL"


@dataclass(frozen=True)
class ProviderSpec:
    """Every fact about one provider that is not code.

    `key_vars` are tried in order; `key_pair`, when both variables are set, is joined as
    `first:second` (fal's FAL_KEY_ID + FAL_KEY_SECRET). `key_docs` describes each key variable for
    the settings table (README) in that order. `urls` maps a role the provider's code asks for
    ("queue", "api" ...) to its `BaseUrl`.
    """

    name: str  # as in the catalog's routes and AIVP_PROVIDERS: "fal"
    title: str  # as messages name it: "fal", "Replicate", "BytePlus"
    target: str  # "module:Class" of the implementation, a subclass of providers.base.ProviderBase
    key_vars: tuple[str, ...]
    key_url: str  # where a person gets a key
    dashboard: str  # where a person finds the provider's record of a job
    urls: Mapping[str, BaseUrl]
    key_pair: tuple[str, str] | None = None
    key_page: str = ""  # the part of key_url's site with the keys, when the URL alone does not lead there
    key_docs: Mapping[str, str] = field(default_factory=dict)

    @property
    def key_var(self) -> str:
        """The variable messages tell a person to set."""
        return self.key_vars[0]

    @property
    def key_where(self) -> str:
        """Where to get a key, as a person reads it: the URL, and the page on it when that helps."""
        return f"{self.key_url} ({self.key_page})" if self.key_page else self.key_url

    def read_key(self, env: Mapping[str, str]) -> str | None:
        """The key from the first variable set, else from the pair when both halves are set."""
        for name in self.key_vars:
            if value := env.get(name, "").strip():
                return value
        if self.key_pair:
            first, second = (env.get(name, "").strip() for name in self.key_pair)
            if first and second:
                return f"{first}:{second}"
        return None
