"""The providers aivp can call: their facts as data (`aivp.registry`), their code loaded on demand.

Adding a provider means one module with a `providers.base.ProviderBase` subclass, one
`ProviderSpec` in `aivp.registry.BUILTIN`, and its routes in the catalog (`catalog/models.json`).

This module is imported by settings.py and the catalog at start-up, so it must stay light: it
imports neither httpx nor any provider module; `create_all` imports each implementation when the
server builds its providers. A provider without its key still loads (so the catalog, search and
docs work) and raises MissingKeyError from `check_ready()` when a call needs it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ..registry import BUILTIN, PROVIDER_NAMES, SPECS, key_help, spec_for

if TYPE_CHECKING:
    import httpx

    from ..settings import Settings
    from .base import ProviderBase

__all__ = ["BUILTIN", "PROVIDER_NAMES", "SPECS", "create_all", "key_help", "spec_for"]


def create_all(settings: Settings, client: httpx.AsyncClient) -> dict[str, ProviderBase]:
    """Every built-in provider, built on the shared client (imports each implementation now)."""
    from .base import ProviderBase

    providers: dict[str, ProviderBase] = {}
    for spec in BUILTIN:
        module, _, cls = spec.target.partition(":")
        provider = getattr(import_module(module), cls)(settings, client)
        if not isinstance(provider, ProviderBase) or provider.name != spec.name:
            raise TypeError(f"{spec.target} must be a ProviderBase named {spec.name!r}.")
        providers[spec.name] = provider
    return providers
