"""The providers aivp knows, as data: each one's facts (`ProviderSpec`), before any of its code is loaded.

A `ProviderSpec` names the provider's class ("module:Class", imported only when the server builds
its providers), the environment variables its key may come from, where a person gets a key, its
base URLs (each overridable by an `AIVP_*_URL` variable) and the page that lists its jobs.

Adding a provider means one module with a `providers.base.ProviderBase` subclass, one
`ProviderSpec` in `BUILTIN`, and its routes in the catalog (`catalog/models.json`). Everything else
(settings, the key help, AIVP_PROVIDERS, the catalog's validation, the settings table) is derived
from `BUILTIN`. Standard library only: settings.py and the catalog import it at start-up, below
everything else, so cold start does not grow.
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


# In catalog order: the default preference among providers that serve the same model.
BUILTIN: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="fal",
        title="fal",
        target="aivp.providers.fal:FalProvider",
        key_vars=("FAL_KEY", "FAL_API_KEY"),
        key_pair=("FAL_KEY_ID", "FAL_KEY_SECRET"),
        key_url="https://fal.ai/dashboard/keys",
        dashboard="https://fal.ai/dashboard/requests",
        urls={
            "queue": BaseUrl("AIVP_FAL_QUEUE_URL", "https://queue.fal.run", "fal queue base URL"),
            "rest": BaseUrl("AIVP_FAL_REST_URL", "https://rest.fal.ai", "fal REST/storage base URL"),
            "cdn": BaseUrl("AIVP_FAL_CDN_URL", "https://v3.fal.media", "fal CDN upload base URL"),
            # the platform API: model search, per-endpoint OpenAPI, pricing (routes under /v1/)
            "platform": BaseUrl("AIVP_FAL_API_URL", "https://api.fal.ai", "fal platform API base URL (model search, "
                                "schemas, prices; routes under /v1/)"),
        },
        key_docs={
            "FAL_KEY": "fal.ai API key (`key_id:key_secret`). Also accepted: FAL_API_KEY, "
                       "or FAL_KEY_ID + FAL_KEY_SECRET.",
            "FAL_API_KEY": "Alternative name for FAL_KEY.",
            "FAL_KEY_ID": "With FAL_KEY_SECRET, an alternative to FAL_KEY.",
            "FAL_KEY_SECRET": "With FAL_KEY_ID, an alternative to FAL_KEY.",
        },
    ),
    ProviderSpec(
        name="replicate",
        title="Replicate",
        target="aivp.providers.replicate:ReplicateProvider",
        key_vars=("REPLICATE_API_TOKEN",),
        key_url="https://replicate.com/account/api-tokens",
        dashboard="https://replicate.com/predictions",
        urls={"api": BaseUrl("AIVP_REPLICATE_URL", "https://api.replicate.com", "Replicate API base URL")},
        key_docs={
            "REPLICATE_API_TOKEN": "Replicate API token (for the FLUX and IP-Adapter models served there).",
        },
    ),
    ProviderSpec(
        name="byteplus",
        title="BytePlus",
        target="aivp.providers.byteplus:BytePlusProvider",
        key_vars=("ARK_API_KEY", "BYTEPLUS_API_KEY"),
        key_url="https://console.byteplus.com/ark",
        key_page="API keys",
        dashboard="https://console.byteplus.com/ark",
        urls={"api": BaseUrl("AIVP_ARK_URL", "https://ark.ap-southeast.bytepluses.com/api/v3",
                             "BytePlus ModelArk base URL")},
        key_docs={
            "ARK_API_KEY": "BytePlus ModelArk API key (Seedream 4.5). Also accepted: BYTEPLUS_API_KEY.",
            "BYTEPLUS_API_KEY": "Alternative name for ARK_API_KEY.",
        },
    ),
)

SPECS: dict[str, ProviderSpec] = {spec.name: spec for spec in BUILTIN}
# Every provider name aivp knows, in catalog order (for Literal-like checks of tool arguments).
PROVIDER_NAMES: tuple[str, ...] = tuple(SPECS)


def spec_for(name: str) -> ProviderSpec:
    """The spec of a known provider; a ValueError naming the known ones otherwise."""
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"{name!r} is not a provider aivp knows; use one of {', '.join(PROVIDER_NAMES)}.") from None


def key_help(name: str) -> tuple[str, str]:
    """(variable to set, where to get a key) for a provider, e.g. ("FAL_KEY", "https://fal.ai/dashboard/keys")."""
    spec = spec_for(name)
    return spec.key_var, spec.key_where
