"""The live catalog in a server process: built on first need, fed by the providers' model APIs.

`ensure(state, name)` runs before `prepare` in the tools: a catalog name needs nothing, any other
fal endpoint id or Replicate owner/name[:version] is read (cache first) so that `prepare` (which
never sends anything) finds it in `found()`. `refusal()` says why a named model must not run: a
curated entry marked retired (Sora 2), a live endpoint fal lists as deprecated, or a curated route
the cache last saw deprecated or gone; each with the successor for the same task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..catalog import lookup, resolve
from ..catalog.cache import DiskCache
from ..catalog.live import LiveCatalog, LiveEndpoint, kind_of_name, unavailable
from ..catalog.routing import DEFAULTS, TASK_OF
from ..catalog.schema import Model, Route
from ..errors import (
    InputError,
    InvalidParameterError,
    MissingKeyError,
    ProviderError,
    RetiredModelError,
    UnknownModelError,
)
from .studio import Studio

if TYPE_CHECKING:
    import httpx

    from ..settings import Settings


def build(settings: Settings, client: httpx.AsyncClient) -> LiveCatalog:
    """A live catalog on this client: fal's platform API always, Replicate when its token is set."""
    from ..providers.fal_platform import FalPlatform
    from ..providers.replicate_models import ReplicateModels

    replicate = ReplicateModels(settings, client) if settings.key_for("replicate") is not None else None
    return LiveCatalog(DiskCache(settings.cache_dir, settings.catalog_ttl_s), fal=FalPlatform(settings, client),
                       replicate=replicate)


def live_for(state: Studio) -> LiveCatalog | None:
    """The process's live catalog (None when the server has no job runner, hence no HTTP client)."""
    if state.live is None:
        runner = state.runner_or_none
        if runner is None:
            return None
        state.live = build(state.settings, runner.client)
    live: LiveCatalog = state.live
    return live


def is_curated(name: str) -> bool:
    return lookup(name) is not None


async def ensure(state: Studio, name: str | None, provider: str | None = None) -> LiveEndpoint | None:
    """Read the live endpoint a call names (no request for a catalog name, or one read before)."""
    if not name or name.strip().lower() == "fal" or is_curated(name):
        return None
    which = kind_of_name(name, provider)
    if which is None:
        return None  # prepare refuses it as an unknown model, naming the closest catalog ones
    if which == "replicate":
        state.settings.require_key("replicate")
    live = live_for(state)
    if live is None:
        return None
    key = _key(name, provider)
    if key in found(state):
        return found(state)[key]
    try:
        ep = await live.endpoint(name, provider)
    except MissingKeyError:
        raise
    except ProviderError as exc:
        raise unavailable(name.strip(), exc) from None
    found(state)[key] = ep
    return ep


def found(state: Studio) -> dict[str, LiveEndpoint]:
    """Live endpoints read in this process, by the name (and provider) a call used."""
    live = state.live
    return live.found if isinstance(live, LiveCatalog) else {}


def _key(name: str, provider: str | None) -> str:
    return f"{provider or ''}|{name.strip().lower()}"


def known(state: Studio, name: str, provider: str | None = None) -> LiveEndpoint | None:
    return found(state).get(_key(name, provider))


# ---------------------------------------------------------------- refusals: retired, deprecated, vanished

def successor(task: str) -> str:
    """What aivp runs by default for a task: the suggestion when a model is gone."""
    wanted = DEFAULTS.get(task) or DEFAULTS.get(TASK_OF.get(task, task)) or DEFAULTS["t2v"]
    try:
        return f"{resolve(wanted).model.id} ({wanted})"
    except UnknownModelError:
        return wanted


def retired_message(model: Model, task: str) -> str:
    r = model.retired
    assert r is not None
    nxt = next((v for k, v in r.successors.items() if k == task), None) or next(iter(r.successors.values()), None)
    instead = ""
    if nxt:
        try:
            instead = f" Use {resolve(nxt).model.id} instead for {task}"
        except UnknownModelError:
            instead = f" Use {nxt} instead for {task}"
    return (f"{model.id} ({model.name}) is retired: {r.reason.rstrip('.')} (since {r.on}). Nothing was sent."
            f"{instead or ' Pick another model with search_models'}.")


NOT_MEDIA = ("audio", "speech", "music", "llm", "text-to-text", "3d", "training", "vision")


def live_refusal(ep: LiveEndpoint, task: str) -> InputError | None:
    """Why a live endpoint must not run for this call (deprecated, or it makes no image or video), or None."""
    from ..catalog.openapi import output_files

    category = (ep.category or "").lower()
    if ep.kind is None and any(w in category for w in NOT_MEDIA):
        return InvalidParameterError(f"{ep.id} is a {ep.category} endpoint; aivp's tools make images and video. "
                                     "Nothing was sent. Pick an image or video model with search_models.")
    if ep.provider == "fal" and not ep.schema_error and not output_files(ep.output):
        return InvalidParameterError(f"{ep.id}'s output schema has no image or video files, so aivp could not save "
                                     "a result. Nothing was sent. Pick another model with search_models.")
    if ep.status != "active":
        return RetiredModelError(
            f"{ep.id} is listed as {ep.status} by {ep.provider}; aivp does not send new requests to it. Nothing was "
            f"sent. For {task} use {successor(ep.task or task)}, or pick another with search_models.")
    return None


def route_refusal(state: Studio, model: Model, route: Route, task: str) -> RetiredModelError | None:
    """A curated fal route the cached live catalog last saw deprecated or gone (no request is made here)."""
    live = live_for(state) if route.provider == "fal" else None  # only the cache is read: no request
    if live is None:
        return None
    entry = live.cache.get(f"fal/model/{route.endpoint}")
    if entry is None or not isinstance(entry.data, dict):
        return None
    items = entry.data.get("models")
    if isinstance(items, list) and not any(isinstance(m, dict) and m.get("endpoint_id") == route.endpoint for m in items):
        why = "fal's model API no longer lists it"
    else:
        ep = live.cached(route.endpoint)
        if ep is None or ep.status == "active":
            return None
        why = f"fal lists it as {ep.status}"
    return RetiredModelError(f"{model.id} ({route.endpoint}) cannot be run: {why} (as of {_ago(entry.age_s())} ago). "
                             f"Nothing was sent. For {task} use {successor(task)}, or pick another with search_models.")


def _ago(seconds: float) -> str:
    from ..catalog.cache import age_text

    return age_text(seconds)


