"""Reading live schemas: OpenAPI to JSON Schema, flat arguments onto fields, jsonschema's verdicts in words.

Pure functions over the sandbox's platform fixtures (real-shaped fal and Replicate documents); no HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest

from aivp.catalog.live import parse_fal, parse_replicate
from aivp.catalog.livemodel import as_model, build_live, coerce, pricing_of, roles_of
from aivp.catalog.live import LivePrice
from aivp.catalog.openapi import cards, fal_schemas, inline, media_kind, output_files, output_shape
from aivp.catalog.pricing import estimate_call
from aivp.errors import InvalidParameterError
from aivp.sandbox.platform_docs import fixtures


def fal_item(eid: str) -> dict[str, Any]:
    return next(i for i in fixtures()["fal"] if i["endpoint_id"] == eid)


def test_refs_are_inlined_and_openapi_spellings_become_json_schema() -> None:
    inp, out = fal_schemas(fal_item("fal-ai/hidream-i1-full")["openapi"])
    size = inp["properties"]["image_size"]["anyOf"][0]
    assert "$ref" not in str(inp) and size["title"] == "ImageSize"
    width = size["properties"]["width"]
    assert width["exclusiveMinimum"] == 0 and "minimum" not in width  # OpenAPI 3.0's boolean form rewritten
    assert inp["properties"]["seed"]["type"] == ["integer", "null"]  # nullable
    assert out["properties"]["images"]["items"]["properties"]["url"]["type"] == "string"
    cyclic = {"components": {"schemas": {"A": {"properties": {"next": {"$ref": "#/components/schemas/A"}}}}}}
    assert inline({"$ref": "#/components/schemas/A"}, cyclic)["properties"]["next"] == {"title": "A"}


def test_cards_keep_the_providers_order_and_say_types_enums_ranges_and_defaults() -> None:
    inp, _ = fal_schemas(fal_item("fal-ai/hidream-i1-full")["openapi"])
    found = {c["name"]: c for c in cards(inp)}
    assert [c["name"] for c in cards(inp)][:3] == ["prompt", "negative_prompt", "image_size"]
    assert found["prompt"]["required"] is True
    assert found["num_inference_steps"] == {**found["num_inference_steps"], "type": "integer", "min": 1, "max": 50,
                                            "default": 50}
    assert found["output_format"]["values"] == ["jpeg", "png"]
    assert found["image_size"]["type"] == "object (ImageSize) | string" and "square_hd" in found["image_size"]["values"]
    assert found["loras"]["max_items"] == 3 and found["loras"]["type"] == "array<LoraWeight>"


def test_file_fields_and_output_files_are_found_by_shape_name_and_format() -> None:
    lip, _ = fal_schemas(fal_item("fal-ai/sync-lipsync/v2")["openapi"])
    assert media_kind("video_url", lip["properties"]["video_url"]) == ("video", False)
    assert media_kind("audio_url", lip["properties"]["audio_url"]) == ("file", False)
    assert media_kind("sync_mode", lip["properties"]["sync_mode"]) is None
    _, ltx_out = fal_schemas(fal_item("fal-ai/ltx-2-19b/image-to-video")["openapi"])
    assert output_files(ltx_out) == [("video", "video", False)]  # VideoFile nested through allOf
    _, hd_out = fal_schemas(fal_item("fal-ai/hidream-i1-full")["openapi"])
    assert output_shape(hd_out, "image") == "images"
    rep = parse_replicate(fixtures()["replicate"][0], None)
    assert media_kind("first_frame_image", rep.input["properties"]["first_frame_image"]) == ("image", False)
    assert output_shape(rep.output, "video") == "video" and rep.submit_to.startswith("minimax/video-01:")
    ideogram = {c["name"]: c for c in cards(parse_replicate(fixtures()["replicate"][1], None).input)}
    assert "16:9" in ideogram["aspect_ratio"]["values"] and ideogram["aspect_ratio"]["default"] == "1:1"  # enum via allOf


def test_flat_arguments_map_onto_fields_by_name_and_by_description() -> None:
    pix, _ = fal_schemas(fal_item("fal-ai/pixverse/v5.5/image-to-video")["openapi"])
    assert roles_of(pix, "video") == {"prompt": "prompt", "image_url": "start_image", "aspect_ratio": "aspect_ratio",
                                      "resolution": "resolution", "duration": "duration",
                                      "negative_prompt": "negative_prompt", "seed": "seed"}
    assert "generate_audio_switch" not in roles_of(pix, "video")  # no name match: reachable through options
    rep = parse_replicate(fixtures()["replicate"][0], None)
    roles = roles_of(rep.input, "video")
    assert roles["first_frame_image"] == "start_image"  # found by its name
    assert "subject_reference" not in roles  # one image is not a reference list: it goes through options
    hd, _ = fal_schemas(fal_item("fal-ai/hidream-i1-full")["openapi"])
    assert roles_of(hd, "image")["image_size"] == "size"


def test_values_are_coerced_to_the_schemas_spelling() -> None:
    pix, _ = fal_schemas(fal_item("fal-ai/pixverse/v5.5/image-to-video")["openapi"])
    assert coerce(pix["properties"]["duration"], 8, "duration") == "8"
    assert coerce(pix["properties"]["duration"], 8.0, "duration") == "8"
    ltx, _ = fal_schemas(fal_item("fal-ai/ltx-2-19b/image-to-video")["openapi"])
    assert coerce(ltx["properties"]["num_frames"], "161", None) == 161  # an integer enum stays an integer
    hd, _ = fal_schemas(fal_item("fal-ai/hidream-i1-full")["openapi"])
    assert coerce(hd["properties"]["image_size"], "1280x720", "size") == {"width": 1280, "height": 720}


def live_build(eid: str, kind: str, task: str, roles: dict[str, Any], options: dict[str, Any] | None = None) -> Any:
    ep = parse_fal(fal_item(eid))
    ep.price = LivePrice(**{k: v for k, v in fal_item(eid).get("price", {}).items()}) if fal_item(eid).get("price") else None
    model, endpoint, route = as_model(ep, kind, task)
    return build_live(model, endpoint, route, ep.input, roles, options)


@pytest.mark.parametrize(("roles", "options", "said"), [
    ({"prompt": "x", "start_image": "https://e.x/a.png", "resolution": "8k"}, None,
     "resolution='8k' is not allowed; choose one of '360p', '540p', '720p', '1080p'"),
    ({"prompt": "x", "start_image": "https://e.x/a.png", "duration": 7}, None,
     "duration='7' is not allowed; choose one of '5', '8', '10'"),
    ({"prompt": "x"}, None, "image_url (the image argument) is required"),
    ({"prompt": "x", "start_image": "https://e.x/a.png", "end_image": "https://e.x/b.png"}, None,
     "has no field for end_image; its fields are: prompt, image_url, aspect_ratio"),
    ({"prompt": "x", "start_image": "https://e.x/a.png"}, {"style": "oil"}, "style='oil' is not allowed; choose one of 'anime'"),
    ({"prompt": "x", "start_image": "https://e.x/a.png"}, {"made_up": 1}, "has no field 'made_up'"),
])
def test_live_calls_are_refused_before_submit_naming_the_field_and_the_valid_values(
        roles: dict[str, Any], options: dict[str, Any] | None, said: str) -> None:
    with pytest.raises(InvalidParameterError) as e:
        live_build("fal-ai/pixverse/v5.5/image-to-video", "video", "i2v", roles, options)
    assert said in str(e.value)


def test_ranges_nested_objects_and_integer_enums_are_checked_by_the_schema() -> None:
    with pytest.raises(InvalidParameterError, match=r"num_inference_steps=80 is out of range; it must be at least 1 and at most 50"):
        live_build("fal-ai/hidream-i1-full", "image", "t2i", {"prompt": "x"}, {"num_inference_steps": 80})
    with pytest.raises(InvalidParameterError, match=r"loras\.0\.scale=9 is out of range"):
        live_build("fal-ai/hidream-i1-full", "image", "t2i", {"prompt": "x"}, {"loras": [{"path": "a", "scale": 9}]})
    with pytest.raises(InvalidParameterError, match="choose one of 121, 161, 241"):
        live_build("fal-ai/ltx-2-19b/image-to-video", "video", "i2v", {"prompt": "x", "start_image": "https://e.x/a"},
                   {"num_frames": 100})
    b = live_build("fal-ai/hidream-i1-full", "image", "t2i", {"prompt": "x", "aspect_ratio": "16:9", "num_images": 2})
    assert b.payload == {"prompt": "x", "image_size": "landscape_16_9", "num_images": 2}


def test_live_prices_are_unit_price_times_quantity_or_plainly_unknown() -> None:
    b = live_build("fal-ai/pixverse/v5.5/image-to-video", "video", "i2v",
                   {"prompt": "x", "start_image": "https://e.x/a.png", "duration": 8})
    est = estimate_call(b.model, b.endpoint, b.route, b.effective)
    assert est.known and est.usd == pytest.approx(0.48) and est.detail == "8 s x $0.06/s"
    b = live_build("fal-ai/hidream-i1-full", "image", "t2i", {"prompt": "x", "size": "1024x1024", "num_images": 2})
    assert estimate_call(b.model, b.endpoint, b.route, b.effective).usd == pytest.approx(2 * 1.048576 * 0.05)
    b = live_build("fal-ai/ltx-2-19b/image-to-video", "video", "i2v", {"prompt": "x", "start_image": "https://e.x/a"})
    est = estimate_call(b.model, b.endpoint, b.route, b.effective)
    assert not est.known and est.shown == "unknown" and est.as_dict()["price_known"] is False
    assert pricing_of(LivePrice(3.0, "minutes"), "", True).unit == "unknown"  # a unit aivp cannot count
    assert pricing_of(LivePrice(0.1, "seconds"), "", False).unit == "unknown"  # per second, but no duration input
    assert pricing_of(LivePrice(0.1, "images", "EUR"), "", False).unit == "unknown"


def test_endpoints_that_make_no_image_or_video_are_refused() -> None:
    from aivp.catalog.live import LiveEndpoint
    from aivp.domain.live import live_refusal

    audio = LiveEndpoint("fal", "fal-ai/some-tts", "fal-ai/some-tts", "TTS", "text-to-speech", "active", "",
                         {"type": "object", "properties": {"text": {"type": "string"}}},
                         {"type": "object", "properties": {"audio": {"$ref": "x"}}})
    refusal = live_refusal(audio, "t2v")
    assert refusal is not None and "text-to-speech endpoint" in str(refusal) and "Nothing was sent" in str(refusal)
    no_files = LiveEndpoint("fal", "fal-ai/captioner", "fal-ai/captioner", "Captioner", None, "active", "",
                            {"type": "object", "properties": {}}, {"type": "object", "properties": {"text": {"type": "string"}}})
    assert "no image or video files" in str(live_refusal(no_files, "t2i"))
    assert live_refusal(parse_fal(fal_item("fal-ai/pixverse/v5.5/image-to-video")), "i2v") is None
