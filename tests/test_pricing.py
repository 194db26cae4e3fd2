"""Estimates from the catalog: each pricing unit, and rules such as audio off or 4K."""

from __future__ import annotations

from typing import Any

import pytest

from aivp.catalog import resolve
from aivp.catalog.params import build, choose_endpoint
from aivp.catalog.pricing import estimate_call


def cost(name: str, task: str, roles: dict[str, Any], options: dict[str, Any] | None = None) -> float:
    found = resolve(name)
    e = found.endpoint or choose_endpoint(found.model, task)
    b = build(found.model, e, e.routes[0], roles, options)
    return estimate_call(found.model, e, e.routes[0], b.effective).usd


def test_per_image_times_count() -> None:
    assert cost("nano-banana-pro", "t2i", {"prompt": "x"}) == pytest.approx(0.15)
    assert cost("nano-banana-pro", "t2i", {"prompt": "x", "num_images": 4}) == pytest.approx(0.60)


def test_seedance_video_tokens_match_the_seed_table() -> None:
    # seeds/002: 720p 5 s with audio ~$0.26, 1080p 10 s ~$1.15, audio off halves it
    assert cost("seedance-1.5-pro", "t2v", {"prompt": "x"}) == pytest.approx(0.26, abs=0.01)
    assert cost("seedance-1.5-pro", "t2v", {"prompt": "x", "resolution": "1080p", "duration": 10}) == pytest.approx(1.17, abs=0.03)
    assert cost("seedance-1.5-pro", "t2v", {"prompt": "x", "audio": False}) == pytest.approx(0.13, abs=0.01)


def test_per_second_with_audio_and_resolution_rules() -> None:
    with_audio = cost("veo-3.1", "t2v", {"prompt": "x", "duration": 8, "audio": True})
    no_audio = cost("veo-3.1", "t2v", {"prompt": "x", "duration": 8, "audio": False})
    assert with_audio == pytest.approx(3.20) and no_audio == pytest.approx(1.60)


def test_megapixel_with_first_megapixel_price() -> None:
    one_mp = cost("flux-2-pro", "t2i", {"prompt": "x", "size": "1024x1024"})
    full_hd = cost("flux-2-pro", "t2i", {"prompt": "x", "size": "1920x1080"})
    assert one_mp == pytest.approx(0.03 + 0.015 * (1024 * 1024 / 1e6 - 1), abs=0.002)
    assert full_hd == pytest.approx(0.045, abs=0.002)  # seeds/001: 1920x1080 = $0.045
