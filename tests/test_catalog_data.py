"""The catalog data (models.json) against the conventions the code relies on.

Each test states one property of the data; a failure names the model, endpoint and route at fault.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from aivp.catalog import DATA, catalog, effective_params, effective_pricing, resolve
from aivp.catalog.schema import ROLES, TASKS, Catalog, Endpoint, Model, Param, Route
from aivp.errors import UnknownModelError

# Every model the seeds name, under the id aivp gives it.
REQUIRED_IDS = {
    # seed 000 (aivp-image)
    "nano-banana-pro", "flux-2-turbo", "flux-dev", "flux-schnell", "ideogram-v3", "seedream-4.5",
    "flux-kontext-pro", "bria-fibo-edit", "aura-sr", "clarity-upscaler",
    # seed 001 (reference-image consistency spec)
    "flux-general", "flux-2-pro", "flux-1.1-pro", "flux-dev-ip-adapter",
    # seed 002 (aivp-video)
    "seedance-1.5-pro", "seedance-1-pro", "kling-o3-pro", "kling-o3-standard", "kling-v3-pro", "kling-v3-standard",
    "kling-v2.6-pro", "kling-v2.5-turbo-pro", "veo-3.1", "veo-3.1-fast", "sora-2-pro", "hailuo-02-pro",
    "hailuo-02-standard",
    # seed 004 (Cutflow)
    "flux-2-flash", "nano-banana", "flux-2-dev", "instant-character", "ip-adapter-face-id", "recraft-v3",
    "flux-2-flex",
}
# Endpoint ids the seeds write literally; each must resolve (as a route or an alias).
SEED_ENDPOINTS = [
    "fal-ai/nano-banana-pro", "fal-ai/nano-banana-pro/edit", "fal-ai/flux-2-turbo", "fal-ai/flux/dev",
    "fal-ai/flux/schnell", "fal-ai/ideogram/v3", "fal-ai/ideogram/v3/edit", "fal-ai/ideogram/v3/remix",
    "fal-ai/ideogram/v3/reframe", "fal-ai/bytedance/seedream/v4.5/text-to-image", "fal-ai/bytedance/seedream/v4.5/edit",
    "fal-ai/flux-kontext", "fal-ai/flux/dev/image-to-image", "fal-ai/bria/fibo-edit", "fal-ai/flux/dev/inpainting",
    "fal-ai/aura-sr", "fal-ai/clarity-upscaler", "fal-ai/flux-general/image-to-image", "fal-ai/flux-2-pro/edit",
    "fal-ai/flux-2-dev-turbo", "black-forest-labs/flux-dev", "black-forest-labs/flux-schnell",
    "black-forest-labs/flux-1.1-pro", "lucataco/flux-dev-lora", "seedream-4-5-251128",
    "fal-ai/bytedance/seedance/v1.5/pro", "fal-ai/bytedance/seedance/v1.5/pro/text-to-video",
    "fal-ai/bytedance/seedance/v1.5/pro/image-to-video", "fal-ai/kling-video/o3/pro/text-to-video",
    "fal-ai/kling-video/o3/pro/reference-to-video", "fal-ai/kling-video/o3/standard/reference-to-video",
    "fal-ai/kling-video/v3/pro/text-to-video", "fal-ai/kling-video/v3/pro/image-to-video",
    "fal-ai/kling-video/v2.6/pro/text-to-video", "fal-ai/kling-video/v2.6/pro/image-to-video",
    "fal-ai/kling-video/v2.6/pro/video-to-video", "fal-ai/kling-video/v2.5-turbo/pro", "fal-ai/veo3.1",
    "fal-ai/veo3.1/fast/image-to-video", "fal-ai/veo3.1/first-last-frame-to-video", "fal-ai/sora-2/text-to-video/pro",
    "fal-ai/minimax/hailuo-02/pro/text-to-video", "fal-ai/minimax/hailuo-02/pro/image-to-video",
    "fal-ai/minimax/hailuo-02/standard/text-to-video", "fal-ai/minimax/hailuo-02/standard/image-to-video",
    "fal-ai/bytedance/seedance/v1/pro/text-to-video",
]
IMAGE_TASKS = {"t2i", "i2i", "edit", "inpaint", "upscale"}
VIDEO_TASKS = set(TASKS) - IMAGE_TASKS
SOURCE_IMAGE_TASKS = {"edit", "inpaint", "upscale", "i2i"}
TAGS = {
    "text-rendering", "native-audio", "lip-sync", "end-frame", "camera-fixed", "camera-control", "multi-reference",
    "multi-shot", "elements", "voice", "lora", "4k", "upscale", "object-removal", "style-transfer", "ip-adapter",
    "character", "vector", "fast-preview", "long-clip", "physics", "json-prompt",
}
# The type a parameter must have for each role that implies one.
ROLE_TYPES = {
    "prompt": {"string"}, "negative_prompt": {"string"}, "seed": {"integer"}, "num_images": {"integer"},
    "image": {"image"}, "start_image": {"image"}, "end_image": {"image"}, "mask": {"image"},
    "references": {"images"}, "video": {"video"}, "size": {"size"}, "multi_prompt": {"array"},
    "elements": {"array"}, "ip_adapters": {"array"}, "audio": {"boolean"}, "camera_fixed": {"boolean"},
    "strength": {"number"}, "duration": {"string", "integer", "number"}, "upscale_factor": {"integer", "number"},
}


def calls() -> Iterator[tuple[Model, Endpoint, Route, dict[str, Param]]]:
    for m in catalog().models:
        for e in m.endpoints:
            for r in e.routes:
                yield m, e, r, effective_params(m, e, r)


def where(m: Model, e: Endpoint, r: Route) -> str:
    return f"{m.id} {e.task} {r.provider}:{r.endpoint}"


def by_role(params: dict[str, Param]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, p in params.items():
        if p.role:
            out.setdefault(p.role, []).append(name)
    return out


# ---------------------------------------------------------------------------------------------


def test_catalog_loads_and_holds_every_seed_model() -> None:
    ids = {m.id for m in catalog().models}
    assert REQUIRED_IDS <= ids, f"missing: {sorted(REQUIRED_IDS - ids)}"


@pytest.mark.parametrize("name", SEED_ENDPOINTS)
def test_seed_endpoint_ids_resolve(name: str) -> None:
    assert resolve(name).model.id in REQUIRED_IDS


@pytest.mark.parametrize(
    ("alias", "model_id"),
    [("seedream", "seedream-4.5"), ("byteplus", "seedream-4.5"), ("sd", "seedream-4.5"),
     ("nbp", "nano-banana-pro"), ("poster", "nano-banana-pro"), ("nano-banana-pro", "nano-banana-pro"),
     ("flux", "flux-2-pro"), ("flux-2-pro", "flux-2-pro"), ("fal:fal-ai/veo3.1", "veo-3.1")],
)
def test_seed_aliases_route_to_the_right_model(alias: str, model_id: str) -> None:
    assert resolve(alias).model.id == model_id


def test_fal_is_a_routing_choice_not_a_model() -> None:
    with pytest.raises(UnknownModelError):
        resolve("fal")


def test_endpoint_id_resolves_to_its_endpoint_and_route() -> None:
    found = resolve("fal-ai/kling-video/o3/pro/reference-to-video")
    assert found.endpoint is not None and found.endpoint.task == "reference-to-video"
    assert found.route is not None and found.route.provider == "fal"


def test_every_endpoint_has_a_route() -> None:
    for m in catalog().models:
        assert m.endpoints, m.id
        for e in m.endpoints:
            assert e.routes, f"{m.id} {e.task} has no route"


def test_tasks_match_the_model_kind() -> None:
    for m in catalog().models:
        allowed = IMAGE_TASKS if m.kind == "image" else VIDEO_TASKS
        for e in m.endpoints:
            assert set(e.tasks) <= allowed, f"{m.id} ({m.kind}) has {e.tasks}"
            assert e.task not in e.also, f"{m.id} {e.task} lists itself in also"
            assert (e.output == "video") == (m.kind == "video"), f"{m.id} {e.task} output {e.output}"


def test_at_most_one_param_per_role_per_call() -> None:
    for m, e, r, params in calls():
        doubled = {role: names for role, names in by_role(params).items() if len(names) > 1}
        assert not doubled, f"{where(m, e, r)}: {doubled}"


def test_roles_sit_on_params_of_the_right_type() -> None:
    for m, e, r, params in calls():
        for name, p in params.items():
            assert p.role is None or p.role in ROLES
            if p.role in ROLE_TYPES:
                assert p.type in ROLE_TYPES[p.role], f"{where(m, e, r)}: {name} ({p.type}) as {p.role}"


def test_every_call_takes_a_prompt_unless_it_is_an_upscale_or_reframe() -> None:
    for m, e, r, params in calls():
        if e.task in ("upscale", "edit") and "prompt" not in by_role(params):
            continue  # upscalers and Ideogram reframe take no prompt
        assert "prompt" in by_role(params), where(m, e, r)


def test_image_to_video_needs_a_start_frame() -> None:
    for m, e, r, params in calls():
        if e.task != "i2v":
            continue
        names = by_role(params).get("start_image", [])
        assert names and params[names[0]].required, f"{where(m, e, r)} has no required start_image"


def test_first_last_frame_endpoints_take_both_frames() -> None:
    for m, e, r, params in calls():
        if "first-last-frame" in e.tasks:
            roles = by_role(params)
            assert "start_image" in roles and "end_image" in roles, where(m, e, r)


def test_image_edits_take_a_source_image() -> None:
    for m, e, r, params in calls():
        if e.task in SOURCE_IMAGE_TASKS:
            roles = by_role(params)
            assert "image" in roles or "references" in roles, f"{where(m, e, r)} takes no source image"
        if e.task == "inpaint":
            assert "mask" in by_role(params), f"{where(m, e, r)} takes no mask"


def test_video_to_video_needs_a_source_video() -> None:
    for m, e, r, params in calls():
        if e.task == "v2v":
            names = by_role(params).get("video", [])
            assert names and params[names[0]].required, where(m, e, r)


def test_reference_to_video_takes_references() -> None:
    for m, e, r, params in calls():
        if "reference-to-video" in e.tasks:
            roles = by_role(params)
            assert "references" in roles or "elements" in roles, where(m, e, r)


def test_video_durations_are_bounded() -> None:
    for m, e, r, params in calls():
        if m.kind != "video":
            continue
        for name in by_role(params).get("duration", []):
            p = params[name]
            assert p.values or (p.min is not None and p.max is not None), f"{where(m, e, r)}: {name} is unbounded"


def test_numeric_enums_stay_strings_where_the_provider_spells_them_so() -> None:
    # fal spells durations and safety levels as strings: "5", not 5.
    for m, e, r, params in calls():
        for name, p in params.items():
            if p.type == "string" and p.values:
                assert all(isinstance(v, str) for v in p.values), f"{where(m, e, r)}: {name} {p.values}"


def test_defaults_and_ranges_are_consistent() -> None:
    for m, e, r, params in calls():
        for name, p in params.items():
            at = f"{where(m, e, r)}: {name}"
            if p.min is not None and p.max is not None:
                assert p.min <= p.max, at
            if p.min_items is not None and p.max_items is not None:
                assert p.min_items <= p.max_items, at
            if p.default is None:
                continue
            if p.values is not None and p.type != "size":
                assert p.default in p.values, f"{at}: default {p.default!r} not in {p.values}"
            if p.type in ("integer", "number") and not isinstance(p.default, bool):
                assert p.min is None or p.default >= p.min, at
                assert p.max is None or p.default <= p.max, at
            if p.type == "size" and isinstance(p.default, str) and "x" not in p.default:
                assert p.default in (p.presets or {}), at


def test_size_params_name_their_presets() -> None:
    for m, e, r, params in calls():
        for name, p in params.items():
            if p.type == "size":
                assert p.presets, f"{where(m, e, r)}: {name} has no presets"
                assert all(w > 0 and h > 0 for w, h in p.presets.values()), where(m, e, r)


def test_prices_are_positive() -> None:
    for m, e, r, _ in calls():
        for pricing in filter(None, (m.pricing, e.pricing, r.pricing)):
            assert pricing.price > 0, where(m, e, r)
            assert pricing.first is None or pricing.first > 0, where(m, e, r)
            assert all(rule.price > 0 for rule in pricing.when), where(m, e, r)
            assert pricing.fps > 0


def test_price_rules_name_fields_the_call_has() -> None:
    can_match: dict[tuple[str, int], bool] = {}
    for m, e, r, params in calls():
        pricing = effective_pricing(m, e, r)
        for rule in pricing.when:
            assert rule.if_, f"{where(m, e, r)}: empty rule"
            for field in rule.if_:
                assert field in params, f"{where(m, e, r)}: price rule names {field!r}, which the call lacks"
            hit = all(params[f].values is None or v in params[f].values for f, v in rule.if_.items())
            key = (f"{m.id}: {rule.if_}", id(rule))
            can_match[key] = can_match.get(key, False) or hit
    # A rule shared by several endpoints may not apply to all of them, but it must apply somewhere.
    dead = [k for k, ok in can_match.items() if not ok]
    assert not dead, f"price rules that no call can match: {dead}"


def test_video_token_pricing_can_size_the_clip() -> None:
    # video_token estimates need a duration, and read the frame size from resolution/aspect ratio.
    for m, e, r, params in calls():
        if effective_pricing(m, e, r).unit == "video_token":
            assert {"duration", "resolution"} <= set(by_role(params)), where(m, e, r)


def test_seedance_and_veo_prices_follow_the_docs() -> None:
    seedance = resolve("seedance-1.5-pro").model.pricing
    assert (seedance.unit, seedance.price, seedance.fps) == ("video_token", 2.4, 24)
    assert [(rule.if_, rule.price) for rule in seedance.when] == [({"generate_audio": False}, 1.2)]
    veo = resolve("veo-3.1").model.pricing
    assert veo.unit == "second" and veo.price == 0.40
    rules = {tuple(sorted(rule.if_.items())): rule.price for rule in veo.when}
    assert rules[(("generate_audio", False),)] == 0.20
    assert rules[(("resolution", "4k"),)] == 0.60
    assert rules[(("generate_audio", False), ("resolution", "4k"))] == 0.40
    flux2 = resolve("flux-2-pro").model.pricing
    assert (flux2.unit, flux2.first, flux2.price) == ("megapixel", 0.03, 0.015)


def test_multi_shot_models_carry_kling_limits_and_the_prompt_rule() -> None:
    multi = [(m, e) for m in catalog().models for e in m.endpoints if "multi-shot" in e.tasks]
    assert {m.id for m, _ in multi} >= {"kling-o3-pro", "kling-o3-standard", "kling-v3-pro", "kling-v3-standard"}
    for m, e in multi:
        limits = e.limits or m.limits
        assert limits.max_shots == 6 and limits.max_total_s == 15 and limits.min_shot_s == 3, m.id
        assert limits.max_element_images == 3 and limits.max_video_elements == 1, m.id
        for r in e.routes:
            params = effective_params(m, e, r)
            assert "multi_prompt" in by_role(params), where(m, e, r)
            assert not any(p.required for p in params.values() if p.role == "prompt"), where(m, e, r)
        rules = [x.exactly_one for x in [*m.rules, *e.rules] if x.exactly_one]
        assert ["prompt", "multi_prompt"] in rules, f"{m.id} {e.task} lacks the prompt/multi_prompt rule"


def test_reference_counts_agree_with_limits() -> None:
    for m, e, r, params in calls():
        limits = e.limits or m.limits
        for name in by_role(params).get("references", []):
            p = params[name]
            if limits.max_refs is not None and p.max_items is not None:
                assert p.max_items <= limits.max_refs, f"{where(m, e, r)}: {name} allows more than max_refs"


def test_seedream_has_both_providers_on_each_task() -> None:
    m = resolve("seedream-4.5").model
    for e in m.endpoints:
        assert {r.provider for r in e.routes} == {"fal", "byteplus"}, e.task
    assert m.limits.max_inputs_plus_outputs == 15 and m.limits.max_refs == 14
    assert m.limits.min_pixels == 3_686_400 and m.limits.max_pixels == 16_777_216


def test_flux_dev_and_schnell_route_to_replicate_too() -> None:
    for mid, rep in (("flux-dev", "black-forest-labs/flux-dev"), ("flux-schnell", "black-forest-labs/flux-schnell")):
        t2i = next(e for e in resolve(mid).model.endpoints if e.task == "t2i")
        assert {(r.provider, r.endpoint) for r in t2i.routes} >= {("replicate", rep)}


def test_tags_and_scores_use_the_shared_vocabulary() -> None:
    for m in catalog().models:
        assert set(m.tags) <= TAGS, f"{m.id}: {sorted(set(m.tags) - TAGS)}"
        assert m.summary and len(m.summary) <= 140, m.id
        assert m.source, f"{m.id} does not say where its facts come from"


def test_json_file_is_plain_and_stable() -> None:
    raw = DATA.read_text(encoding="utf-8")
    data = json.loads(raw)
    assert data["version"] == 1
    assert Catalog.model_validate(data).models  # validates without the cached loader


# --- the schema's own guard against name clashes ----------------------------------------------


def _tiny(mid: str, aliases: list[str], endpoint: str) -> dict:
    return {
        "id": mid, "name": mid, "vendor": "test", "kind": "image", "summary": "test", "aliases": aliases,
        "tier": "fast", "speed": 1, "quality": 1, "pricing": {"unit": "image", "price": 0.01},
        "endpoints": [{"task": "t2i", "output": "images", "routes": [{"provider": "fal", "endpoint": endpoint}]}],
    }


def test_two_models_cannot_share_an_alias() -> None:
    bad = {"version": 1, "models": [_tiny("a", ["shared"], "x/a"), _tiny("b", ["SHARED"], "x/b")]}
    with pytest.raises(ValidationError, match="(?i)shared"):
        Catalog.model_validate(bad)


def test_an_alias_cannot_shadow_another_models_endpoint() -> None:
    bad = {"version": 1, "models": [_tiny("a", [], "fal-ai/a"), _tiny("b", ["fal-ai/a"], "fal-ai/b")]}
    with pytest.raises(ValidationError, match="fal-ai/a"):
        Catalog.model_validate(bad)


def test_the_real_catalog_rejects_a_clashing_copy() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    clash = copy.deepcopy(next(m for m in data["models"] if m["id"] == "aura-sr"))
    clash["id"] = "aura-sr-copy"
    clash["aliases"] = []
    data["models"].append(clash)  # same endpoint id under a second model
    with pytest.raises(ValidationError, match="fal-ai/aura-sr"):
        Catalog.model_validate(data)
