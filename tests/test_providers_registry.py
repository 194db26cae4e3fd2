"""The provider seam: one registry of specs drives settings and the catalog, and every provider has every member."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pydantic
import pytest

from aivp.catalog.schema import Route
from aivp.providers import BUILTIN, PROVIDER_NAMES, create_all, key_help, spec_for
from aivp.providers.base import USER_AGENT, Canceled, Completed, ProviderBase, Queued, Running
from aivp.settings import VARIABLES, Secret, Settings

from .conftest import make_settings


def test_settings_and_the_catalog_load_without_httpx_or_provider_code() -> None:
    code = ("import sys, aivp.settings, aivp.catalog.schema; "
            "print(sorted(m for m in sys.modules if m in ('httpx', 'aivp.registry') or m.startswith('aivp.providers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['aivp.registry']"


def test_every_provider_has_every_member(tmp_path: Path) -> None:
    providers = create_all(make_settings(tmp_path, keys={name: "k-123456" for name in PROVIDER_NAMES}),
                           httpx.AsyncClient())
    assert tuple(providers) == PROVIDER_NAMES
    for name, p in providers.items():
        assert isinstance(p, ProviderBase) and p.name == name and p.dashboard == spec_for(name).dashboard
        assert p.upload_ttl_s > 0 and p.output_warnings("images", {}) == []
        assert p.auth_headers()["User-Agent"] == USER_AGENT
    assert providers["fal"].auth_headers()["Authorization"] == "Key k-123456"
    assert providers["replicate"].auth_headers()["Authorization"] == "Bearer k-123456"
    assert providers["replicate"].upload_ttl_s < providers["fal"].upload_ttl_s  # Replicate's files expire in a day


def test_keys_urls_and_variables_come_from_the_specs(tmp_path: Path) -> None:
    s = Settings.from_env({"BYTEPLUS_API_KEY": "ark-1", "AIVP_REPLICATE_URL": "http://127.0.0.1:9/r/"},
                          project_dir=tmp_path)
    assert s.key_for("byteplus") == Secret("ark-1") and s.key_for("replicate") is None
    assert s.url("replicate") == "http://127.0.0.1:9/r" and s.url("fal", "cdn") == "https://v3.fal.media"
    assert s.byteplus_key == Secret("ark-1") and s.replicate_api_url == s.url("replicate")  # derived names
    assert key_help("byteplus") == ("ARK_API_KEY", "https://console.byteplus.com/ark (API keys)")
    for spec in BUILTIN:
        assert set(spec.key_vars) | set(spec.key_pair or ()) <= set(spec.key_docs) <= set(VARIABLES)
        assert {u.env for u in spec.urls.values()} <= set(VARIABLES)
    with pytest.raises(ValueError, match="fal, replicate, byteplus"):
        key_help("nope")


def test_the_catalog_accepts_only_registered_providers() -> None:
    assert Route(provider="byteplus", endpoint="m").provider == "byteplus"
    with pytest.raises(pydantic.ValidationError, match="unknown provider 'nope'"):
        Route(provider="nope", endpoint="m")


@pytest.mark.anyio
async def test_poll_backs_off_and_starts_over_on_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(round(s, 4))

    monkeypatch.setattr("aivp.providers.base.anyio.sleep", sleep)
    settings = make_settings(tmp_path, poll_initial_s=1.0, poll_max_s=2.0)
    fal = create_all(settings, httpx.AsyncClient())["fal"]
    answers = [Queued(), Queued(), Queued(), Running(), Running(), Completed()]

    async def read() -> Queued | Running | Completed | Canceled:
        return answers.pop(0)

    states = [s async for s in fal.poll(read, last=Queued())]
    assert states == [Running(), Completed()]
    assert slept == [1.0, 1.6, 2.0, 1.0, 1.6]  # x1.6 capped at poll_max_s, back to the start on a change
