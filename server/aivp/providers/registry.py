"""The built-in providers as data: each one's facts (`ProviderSpec`), in catalog order.

Adding a provider means one module with a `providers.base.ProviderBase` subclass, one
`ProviderSpec` below, and its routes in the catalog (`catalog/models.json`). Everything else
(settings, the key help, AIVP_PROVIDERS, the catalog's validation, the settings table) is derived
from `BUILTIN`. Standard library only: settings.py and the catalog import it at start-up.
"""

from __future__ import annotations

from .spec import BaseUrl, ProviderSpec

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
