"""Arguments checked against the catalog before anything is sent: each refusal names the valid choices."""

from __future__ import annotations

from typing import Any

import pytest

from aivp.catalog import resolve
from aivp.catalog.params import build, choose_endpoint, coerce_duration
from aivp.catalog.sizes import ratio_size
from aivp.errors import InvalidParameterError, UnknownModelError


def _build(name: str, task: str, roles: dict[str, Any], options: dict[str, Any] | None = None, **kw: Any):
    found = resolve(name)
    endpoint = found.endpoint or choose_endpoint(found.model, task)
    return build(found.model, endpoint, endpoint.routes[0], roles, options, **kw)


def test_unknown_model_lists_closest() -> None:
    with pytest.raises(UnknownModelError) as e:
        resolve("seedanse-1.5-pro")
    assert "seedance-1.5-pro" in str(e.value) and "search_models" in str(e.value)


def test_aliases_and_endpoint_ids_resolve() -> None:
    assert resolve("nbp").model.id == "nano-banana-pro"
    r = resolve("fal-ai/bytedance/seedance/v1.5/pro/image-to-video")
    assert r.model.id == "seedance-1.5-pro" and r.endpoint is not None and r.endpoint.task == "i2v"
    assert resolve("FAL-AI/NANO-BANANA-PRO/EDIT").endpoint.task == "edit"


def test_duration_spelled_per_model_and_refused_with_choices() -> None:
    b = _build("seedance-1.5-pro", "t2v", {"prompt": "x", "duration": 8})
    assert b.payload["duration"] == "8"
    with pytest.raises(InvalidParameterError) as e:
        _build("seedance-1.5-pro", "t2v", {"prompt": "x", "duration": 13})
    assert "4s" in str(e.value) and "12s" in str(e.value) and "13s" in str(e.value)


def test_enum_and_range_refusals_name_valid_values() -> None:
    with pytest.raises(InvalidParameterError, match="480p.*720p.*1080p"):
        _build("seedance-1.5-pro", "t2v", {"prompt": "x", "resolution": "8k"})
    with pytest.raises(InvalidParameterError, match="between 1 and 4"):
        _build("nano-banana-pro", "t2i", {"prompt": "x", "num_images": 9})
    with pytest.raises(InvalidParameterError, match="no option 'bogus'"):
        _build("nano-banana-pro", "t2i", {"prompt": "x"}, {"bogus": 1})
    with pytest.raises(InvalidParameterError, match="set twice"):
        _build("nano-banana-pro", "t2i", {"prompt": "x", "num_images": 2}, {"num_images": 3})


def test_required_inputs_and_unsupported_roles() -> None:
    with pytest.raises(InvalidParameterError, match="needs image"):
        _build("seedance-1.5-pro", "i2v", {"prompt": "x"})
    with pytest.raises(InvalidParameterError, match="does not take end_image"):
        _build("seedance-1.5-pro", "t2v", {"prompt": "x", "end_image": "https://x/y.png"})
    b = _build("nano-banana-pro", "t2i", {"prompt": "x", "negative_prompt": "blur"})
    assert "negative_prompt" not in b.payload and any("negative" in w for w in b.warnings)


def test_edit_image_goes_first_in_the_reference_list() -> None:
    b = _build("nano-banana-pro", "edit", {"prompt": "x", "image": "https://h/src.png",
                                          "references": ["https://h/r1.png", "https://h/r2.png"]})
    assert b.payload["image_urls"] == ["https://h/src.png", "https://h/r1.png", "https://h/r2.png"]


def test_reference_cap_from_catalog() -> None:
    refs = [f"https://h/{i}.png" for i in range(12)]
    with pytest.raises(InvalidParameterError, match="at most"):
        _build("flux-2-pro", "edit", {"prompt": "x", "references": refs})


def test_aspect_ratio_maps_to_size_preset_or_enum() -> None:
    b = _build("flux-2-pro", "t2i", {"prompt": "x", "aspect_ratio": "16:9"})
    assert b.payload["image_size"] == "landscape_16_9"
    b = _build("nano-banana-pro", "t2i", {"prompt": "x", "aspect_ratio": "9:16"})
    assert b.payload["aspect_ratio"] == "9:16"
    with pytest.raises(InvalidParameterError, match="choose one of"):
        _build("nano-banana-pro", "t2i", {"prompt": "x", "aspect_ratio": "7:1"})
    b = _build("flux-2-pro", "t2i", {"prompt": "x", "size": "1280x720"})
    assert b.payload["image_size"] == {"width": 1280, "height": 720}


def test_multi_prompt_xor_rule() -> None:
    shots = [{"prompt": "a", "duration": "5"}, {"prompt": "b", "duration": "5"}]
    with pytest.raises(InvalidParameterError, match="not both|exactly one"):
        _build("kling-o3-pro", "t2v", {"prompt": "x"}, {"multi_prompt": shots})
    b = _build("kling-o3-pro", "t2v", {}, {"multi_prompt": shots})
    assert b.payload["multi_prompt"] == shots


def test_task_not_offered_names_models_that_do_it() -> None:
    found = resolve("aura-sr")
    with pytest.raises(InvalidParameterError) as e:
        choose_endpoint(found.model, "i2v")
    assert "seedance-1.5-pro" in str(e.value)


def test_helpers() -> None:
    w, h = ratio_size("16:9")
    assert w % 16 == 0 and h % 16 == 0 and abs(w / h - 16 / 9) < 0.02
    p = resolve("veo-3.1").model
    dur = next(pp for e in p.endpoints for pp in {**p.params, **e.params}.values() if pp.role == "duration")
    assert str(coerce_duration("veo", "duration", dur, 8)).rstrip("s") == "8"


def test_multi_shot_and_element_limits_from_the_catalog() -> None:
    seven = [{"prompt": f"s{i}", "duration": "3"} for i in range(7)]
    with pytest.raises(InvalidParameterError, match="at most 6 shots"):
        _build("kling-o3-pro", "t2v", {}, {"multi_prompt": seven})
    with pytest.raises(InvalidParameterError, match="add up to 18 s"):
        _build("kling-o3-pro", "t2v", {}, {"multi_prompt": [{"prompt": "a", "duration": "9"}, {"prompt": "b", "duration": "9"}]})
    with pytest.raises(InvalidParameterError, match="at least 3 s"):
        _build("kling-o3-pro", "t2v", {}, {"multi_prompt": [{"prompt": "a", "duration": "1"}, {"prompt": "b", "duration": "5"}]})
    two_videos = [{"video_url": "https://h/a.mp4"}, {"video_url": "https://h/b.mp4"}]
    with pytest.raises(InvalidParameterError, match="video element"):
        _build("kling-o3-pro", "reference-to-video", {"prompt": "x"}, {"elements": two_videos})
    many = {"frontal_image_url": "https://h/f.png", "reference_image_urls": [f"https://h/{i}.png" for i in range(4)]}
    with pytest.raises(InvalidParameterError, match="element 1 has 4 reference images"):
        _build("kling-o3-pro", "reference-to-video", {"prompt": "x"}, {"elements": [many]})


def test_custom_ratio_respects_the_minimum_pixel_count() -> None:
    b = _build("seedream-4.5", "t2i", {"prompt": "x", "aspect_ratio": "21:9"})
    size = b.payload["image_size"]
    assert size["width"] * size["height"] >= 2560 * 1440 and abs(size["width"] / size["height"] - 21 / 9) < 0.05


def test_resolution_tiers_follow_the_aspect_ratio() -> None:
    for tier, (w, h) in {"standard": (1920, 2400), "high": (2560, 3200), "max": (3200, 4000)}.items():
        b = _build("seedream-4.5", "t2i", {"prompt": "x", "aspect_ratio": "4:5", "size": tier})
        assert b.payload["image_size"] == {"width": w, "height": h}
    with pytest.raises(InvalidParameterError):
        _build("nano-banana-pro", "t2i", {"prompt": "x", "size": "high"})
