"""The live catalog end to end against the sandbox's platform API: endpoints that are not curated run,
retired and deprecated ones are refused, prices are read or said to be unknown, and a failing platform
never breaks a call that does not need it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from aivp.app import build_server
from aivp.catalog.livesearch import prefetch
from aivp.domain.live import build
from tests.conftest import make_settings, ok, png, refused

pytestmark = pytest.mark.anyio

PIXVERSE = "fal-ai/pixverse/v5.5/image-to-video"
LTX = "fal-ai/ltx-2-19b/image-to-video"
PLATFORM = ("platform_models", "platform_pricing", "replicate_models")


def platform_requests(sandbox: Any) -> list[Any]:
    return [r for r in sandbox.requests if r.route in PLATFORM]


async def test_listing_tools_and_resources_makes_no_request(client: Client, sandbox: Any) -> None:
    tools = {t.name for t in (await client.list_tools()).tools}
    await client.list_resources()
    await client.list_resource_templates()
    assert "search_models" in tools and sandbox.requests == []  # cold start: no network at all


async def test_a_non_curated_fal_endpoint_is_found_and_runs_end_to_end(client: Client, project: Path,
                                                                         sandbox: Any) -> None:
    found = await ok(client, "search_models", {"query": "pixverse"})
    row = next(r for r in found["live"] if r["id"] == PIXVERSE)
    assert row["source"] == "live" and row["category"] == "image-to-video" and row["price"] == "$0.06/second"
    card = (await ok(client, "search_models", {"model": PIXVERSE}))["detail"]
    params = {p["name"]: p for p in card["params"]}
    assert params["image_url"]["argument"] == "image" and params["duration"]["values"] == ["5", "8", "10"]
    assert "openapi" not in json.dumps(card) and len(json.dumps(card)) < 4000  # compact, never the document
    png(project / "image/frames/shot-03-ff.png")
    job = await ok(client, "generate_video", {"prompt": "Waves break on the rocks", "model": PIXVERSE, "duration": 8,
                                              "image": "image/frames/shot-03-ff.png", "output": "video/clips/shot-03.mp4",
                                              "options": {"style": "clay"}})
    assert job["status"] == "completed" and job["estimate_usd"] == pytest.approx(0.48)
    sub = sandbox.submissions[-1]
    assert sub.endpoint == PIXVERSE and sub.payload["duration"] == "8" and sub.payload["style"] == "clay"
    assert sub.payload["image_url"].startswith(sandbox.fal_cdn_url)  # the project file was uploaded
    clip = job["files"][0]
    assert clip["path"] == "video/clips/shot-03.mp4" and clip["check"]["ok"] and (project / clip["path"]).is_file()
    record = json.loads((project / "video/log/shot-03.json").read_text())
    assert record["model"] == PIXVERSE and record["estimate"]["unit_price"] == 0.06
    assert record["parameters"]["image_url"]["path"] == "image/frames/shot-03-ff.png"


async def test_a_replicate_model_by_owner_and_name_runs_the_same_way(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox, keys={"replicate": "r8_sandbox_token"})
    png(project / "image/frames/shot-04-ff.png")
    async with Client(build_server(settings)) as c:
        card = (await ok(c, "search_models", {"model": "minimax/video-01"}))["detail"]
        assert card["provider"] == "replicate" and card["endpoint"].startswith("minimax/video-01:")
        text = await refused(c, "generate_video", {"prompt": "A lighthouse", "model": "minimax/video-01",
                                                    "image": "image/frames/shot-04-ff.png"})
        assert "price of this call is unknown" in text and "max_cost_usd" in text
        job = await ok(c, "generate_video", {"prompt": "A lighthouse", "model": "minimax/video-01", "duration": 6,
                                             "image": "image/frames/shot-04-ff.png", "max_cost_usd": 0.6})
        img = await ok(c, "generate_image", {"prompt": "A poster that reads \"STORM\"", "aspect_ratio": "16:9",
                                             "model": "ideogram-ai/ideogram-v3-turbo", "max_cost_usd": 0.1})
    sub = [s for s in sandbox.submissions if s.provider == "replicate"]
    assert sub[0].payload["first_frame_image"].startswith(sandbox.replicate_url) and sub[0].payload["duration"] == 6
    assert sub[1].payload["aspect_ratio"] == "16:9"
    assert job["files"][0]["kind"] == "video" and (project / job["files"][0]["path"]).is_file()
    assert img["files"][0]["kind"] == "image" and job["estimate_usd"] == pytest.approx(0.6)
    records = [json.loads(p.read_text()) for p in (project / "video/log").glob("*.json")]
    assert [r["model"] for r in records] == ["minimax/video-01"]
    assert records[0]["estimate"]["price_known"] is False and records[0]["provider"] == "replicate"
    rows = [r for r in sandbox.requests if r.route == "replicate_models"]
    assert rows and all(r.headers["authorization"].startswith("Bearer ") for r in rows)


@pytest.mark.parametrize(("args", "said"), [
    ({"model": PIXVERSE, "image": "https://example.invalid/a.png", "resolution": "8k"},
     "resolution='8k' is not allowed; choose one of '360p', '540p', '720p', '1080p'"),
    ({"model": PIXVERSE, "image": "https://example.invalid/a.png", "duration": 7},
     "choose one of '5', '8', '10'"),
    ({"model": PIXVERSE}, "image_url (the image argument) is required"),
    ({"model": LTX, "image": "https://example.invalid/a.png", "options": {"num_frames": 100}},
     "num_frames=100 is not allowed; choose one of 121, 161, 241"),
    ({"model": PIXVERSE, "image": "https://example.invalid/a.png", "end_image": "https://example.invalid/b.png"},
     "has no field for end_image; its fields are: prompt, image_url"),
])
async def test_bad_values_for_a_live_endpoint_are_refused_before_submit(client: Client, sandbox: Any,
                                                                          args: dict[str, Any], said: str) -> None:
    text = await refused(client, "generate_video", {"prompt": "x", **args})
    assert said in text and "Nothing was sent" in text
    assert sandbox.submission_count() == 0


async def test_file_fields_of_a_live_schema_get_the_usual_input_checks(client: Client, project: Path,
                                                                       sandbox: Any) -> None:
    args = {"prompt": "lip sync", "model": "fal-ai/sync-lipsync/v2", "video": "https://example.invalid/v.mp4"}
    text = await refused(client, "generate_video", {**args, "options": {"audio_url": "../outside.mp3"}})
    assert "outside the project" in text
    (project / "audio").mkdir()
    (project / "audio/line.mp3").write_bytes(b"ID3" + bytes(64))
    dry = await ok(client, "generate_video", {**args, "options": {"audio_url": "audio/line.mp3"}, "dry_run": True})
    assert dry["request"]["audio_url"]["path"] == "audio/line.mp3"  # a project file, uploaded at submit
    assert dry["estimate_usd"] is None  # priced per minute: a unit aivp cannot count before the run
    assert sandbox.submission_count() == 0


async def test_batch_generate_mixes_live_and_curated_items(client: Client, sandbox: Any) -> None:
    out = await ok(client, "batch_generate", {"items": [
        {"label": "live", "args": {"prompt": "a lighthouse", "model": "fal-ai/hidream-i1-full", "aspect_ratio": "16:9"}},
        {"label": "bad", "args": {"prompt": "x", "model": "fal-ai/hidream-i1-full", "options": {"num_images": 9}}},
        {"label": "curated", "args": {"prompt": "a harbour", "model": "flux-2-flash"}}], "wait_s": 30})
    items = {i["label"]: i for i in out["items"]}
    assert items["live"]["status"] == "completed" and items["curated"]["status"] == "completed"
    assert items["bad"]["status"] == "invalid" and "num_images" in items["bad"]["error"]
    live = next(s for s in sandbox.submissions if s.endpoint == "fal-ai/hidream-i1-full")
    assert live.payload["image_size"] == "landscape_16_9"


async def test_hidream_ranges_and_replicate_enums_are_refused_too(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox, keys={"replicate": "tok"}))) as c:
        text = await refused(c, "generate_image", {"prompt": "x", "model": "fal-ai/hidream-i1-full",
                                                   "options": {"num_inference_steps": 80}})
        assert "num_inference_steps=80 is out of range; it must be at least 1 and at most 50" in text
        text = await refused(c, "generate_image", {"prompt": "x", "model": "ideogram-ai/ideogram-v3-turbo",
                                                   "aspect_ratio": "7:3", "max_cost_usd": 0.1})
        assert "aspect_ratio='7:3' is not allowed" in text and "'16:9'" in text
    assert sandbox.submission_count() == 0


async def test_sora_is_refused_before_submit_with_its_successor(client: Client, sandbox: Any) -> None:
    for name in ("sora-2-pro", "sora", "fal-ai/sora-2/text-to-video/pro"):
        text = await refused(client, "generate_video", {"prompt": "x", "model": name})
        assert "retired" in text and "2026-09-24" in text and "Use seedance-2.0 instead for t2v" in text
    found = await ok(client, "search_models", {"task": "t2v", "limit": 50, "live": False})
    assert "sora-2-pro" not in {m["id"] for m in found["models"]}
    card = (await ok(client, "search_models", {"model": "sora"}))["detail"]
    assert card["status"] == "retired" and card["retired"]["successors"]["t2v"] == "seedance-2.0"
    assert sandbox.submission_count() == 0


async def test_a_deprecated_live_endpoint_is_refused_with_a_successor(client: Client, sandbox: Any) -> None:
    text = await refused(client, "generate_video", {"prompt": "x", "model": "fal-ai/stable-video",
                                                    "image": "https://example.invalid/a.png"})
    assert "listed as deprecated" in text and "seedance-2.0" in text and "Nothing was sent" in text
    assert sandbox.submission_count() == 0


async def test_a_vanished_endpoint_is_refused_and_so_is_a_curated_route_seen_gone(project: Path,
                                                                                  sandbox: Any) -> None:
    settings = make_settings(project, sandbox)
    async with Client(build_server(settings)) as c:
        text = await refused(c, "generate_video", {"prompt": "x", "model": "fal-ai/never-was/text-to-video"})
        assert "fal has no endpoint" in text and "search_models" in text
    sandbox.platform.gone.add("fal-ai/veo3.1/lite")
    async with httpx.AsyncClient() as http:  # what `aivp models --check-live` leaves in the shared cache
        await prefetch(build(settings, http), ["fal-ai/veo3.1/lite"], force=True)
    async with Client(build_server(settings)) as c:
        text = await refused(c, "generate_video", {"prompt": "x", "model": "veo-3.1-lite"})
        assert "no longer lists it" in text and "seedance-2.0" in text
    assert sandbox.submission_count() == 0


# ---------------------------------------------------------------- prices: unknown is said, never $0

async def test_an_unknown_price_says_unknown_and_needs_max_cost_usd(project: Path, sandbox: Any) -> None:
    png(project / "image/frames/shot-05-ff.png")
    args = {"prompt": "Rain on the glass", "model": LTX, "image": "image/frames/shot-05-ff.png"}
    async with Client(build_server(make_settings(project, sandbox))) as c:
        dry = await c.call_tool("generate_video", {**args, "dry_run": True})
        assert not dry.is_error and "unknown price" in dry.content[0].text
        assert dry.structured_content["estimate_usd"] is None and any("Price unknown" in w for w in dry.structured_content["warnings"])
        text = await refused(c, "generate_video", args)
        assert "price of this call is unknown" in text and "max_cost_usd" in text and "lists no price" in text
    async with Client(build_server(make_settings(project, sandbox, budget_usd=5.0, sandboxes=()))) as c:
        text = await refused(c, "generate_video", args)
        assert "budget" in text and "unknown" in text and "Nothing was sent" in text
        text = await refused(c, "generate_video", {**args, "max_cost_usd": 6.0})
        assert "$5.00 budget" in text  # counted at max_cost_usd, which passes the cap
        assert sandbox.submission_count() == 0
        job = await ok(c, "generate_video", {**args, "max_cost_usd": 1.5, "output": "video/clips/shot-05.mp4"})
        status = await ok(c, "queue_status", {})
    assert job["estimate_usd"] == pytest.approx(1.5) and status["spent_usd"] == pytest.approx(1.5)
    record = json.loads((project / "video/log/shot-05.json").read_text())
    assert record["estimate"]["price_known"] is False and "unknown" in record["estimate"]["detail"]


async def test_a_known_price_above_max_cost_usd_is_refused(client: Client, sandbox: Any) -> None:
    text = await refused(client, "generate_image", {"prompt": "x", "max_cost_usd": 0.05})  # nano-banana-pro: $0.15
    assert "more than max_cost_usd" in text and sandbox.submission_count() == 0


# ---------------------------------------------------------------- a failing platform

async def test_the_cache_answers_when_the_platform_is_down_and_says_how_old_it_is(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox)
    async with Client(build_server(settings)) as c:
        await ok(c, "search_models", {"model": PIXVERSE})  # warms the cache
    sandbox.fault("platform_models", status=503, times=None)
    sandbox.fault("platform_pricing", status=503, times=None)
    stale = make_settings(project, sandbox, catalog_ttl_s=0.0)  # every entry is old: the platform is asked first
    async with Client(build_server(stale)) as c:
        card = (await ok(c, "search_models", {"model": PIXVERSE}))["detail"]
        assert card["cache"].startswith("from the cache,") and " old: " in card["cache"] and "503" in card["cache"]
        dry = await ok(c, "generate_video", {"prompt": "x", "model": PIXVERSE, "image": "https://example.invalid/a.png",
                                             "dry_run": True})
        assert dry["estimate_usd"] == pytest.approx(0.3) and any("from the cache" in w for w in dry["warnings"])
        text = await refused(c, "generate_video", {"prompt": "x", "model": LTX})  # never read: no copy to fall back on
        assert "could not read" in text and "no cached copy" in text


async def test_platform_failures_never_break_a_call_that_does_not_need_it(client: Client, sandbox: Any) -> None:
    sandbox.fault("platform_models", action="malformed", times=None)
    found = await ok(client, "search_models", {"task": "t2i"})
    assert found["models"] and found["live"] == [] and "not JSON" in found["note"]
    job = await ok(client, "generate_image", {"prompt": "a catalog model needs no platform"})
    assert job["status"] == "completed"
    text = await refused(client, "generate_video", {"prompt": "x", "model": PIXVERSE})
    assert "could not read" in text and "not JSON" in text and sandbox.submission_count() == 1


async def test_a_rate_limited_platform_is_reported_not_waited_for(client: Client, sandbox: Any) -> None:
    sandbox.fault("platform_models", preset="rate_limit_429", headers={"retry-after": "600"}, times=None)
    found = await ok(client, "search_models", {"query": "video"})
    assert found["models"] and "rate-limiting" in found["note"] and "600 s" in found["note"]


@pytest.mark.slow
async def test_a_slow_platform_times_out_into_the_curated_answer(project: Path, sandbox: Any) -> None:
    sandbox.fault("platform_models", action="stall", delay=5.0, times=None)
    async with Client(build_server(make_settings(project, sandbox, catalog_timeout_s=0.3))) as c:
        found = await ok(c, "search_models", {"task": "t2v"})
    assert found["models"] and found["live"] == [] and "live results unavailable" in found["note"]


async def test_live_results_page_with_a_cursor(client: Client, sandbox: Any) -> None:
    first = await ok(client, "search_models", {"task": "i2v", "limit": 2, "live": True})
    assert len(first["live"]) <= 2 and first["next_cursor"]
    second = await ok(client, "search_models", {"task": "i2v", "limit": 2, "cursor": first["next_cursor"]})
    assert second["models"] == [] and {r["id"] for r in second["live"]}.isdisjoint({r["id"] for r in first["live"]})
    query = [r.query for r in sandbox.requests if r.route == "platform_models"]
    assert query[0]["category"] == "image-to-video" and "cursor" in query[-1]


async def test_an_old_entry_is_asked_for_again_conditionally(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox))) as c:
        await ok(c, "search_models", {"model": PIXVERSE})
    async with Client(build_server(make_settings(project, sandbox, catalog_ttl_s=0.0))) as c:
        card = (await ok(c, "search_models", {"model": PIXVERSE}))["detail"]
    finds = [r for r in sandbox.requests if r.route == "platform_models"]
    assert len(finds) == 2 and finds[1].headers.get("if-none-match", "").startswith('W/"')
    assert card["id"] == PIXVERSE and "cache" not in card  # 304: the same answer, fresh again


# ---------------------------------------------------------------- drift

async def test_check_live_finds_a_planted_drift(project: Path, sandbox: Any, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from aivp.catalog.drift import check_live
    from aivp.cli import main

    settings = make_settings(project, sandbox, keys={"replicate": "tok"})
    async with httpx.AsyncClient() as http:
        found, counts, notes = await check_live(build(settings, http))
    assert counts["checked"] > 80 and notes == [] and not [d for d in found if d.breaking]
    sandbox.platform.drop_values["fal-ai/kling-video/v3/pro/text-to-video"] = {"duration": ["15"]}
    sandbox.platform.price["fal-ai/nano-banana-pro"] = 0.2
    async with httpx.AsyncClient() as http:
        found, _, _ = await check_live(build(settings, http))
    drift = {(d.endpoint, d.what): d for d in found}
    gone = drift[("fal-ai/kling-video/v3/pro/text-to-video", "param duration values")]
    assert gone.breaking and gone.curated == "15" and gone.model == "kling-v3-pro"
    price = drift[("fal-ai/nano-banana-pro", "price")]
    assert not price.breaking and price.live == "$0.2/image"
    for name, value in {**sandbox.env(), "FAL_KEY": "k:v", "AIVP_HOME": str(project / ".home")}.items():
        monkeypatch.setenv(name, value)
    assert await anyio_to_thread(lambda: main(["models", "--check-live"])) == 1
    out = capsys.readouterr().out
    assert "param duration values" in out and "YES" in out and "that would break a call" in out


async def anyio_to_thread(fn: Any) -> Any:
    import anyio

    return await anyio.to_thread.run_sync(fn)
