"""The providers aivp can call, loaded through one registry exactly as an external one would be.

Each provider module exposes a class taking `(settings, client)`. `create_all` builds every
built-in provider; a provider without its key still loads (so the catalog, search and docs work)
and raises MissingKeyError from `check_ready()` when a call needs it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from ..settings import Settings
    from .base import Provider

# provider name -> "module:Class"
BUILTIN: dict[str, str] = {
    "fal": "aivp.providers.fal:FalProvider",
    "replicate": "aivp.providers.replicate:ReplicateProvider",
    "byteplus": "aivp.providers.byteplus:BytePlusProvider",
}


def create_all(settings: Settings, client: httpx.AsyncClient) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    for name, target in BUILTIN.items():
        module, _, cls = target.partition(":")
        providers[name] = getattr(import_module(module), cls)(settings, client)
    return providers
