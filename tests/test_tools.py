"""Every tool through an in-memory MCP client against the sandbox (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.types import ImageContent, ResourceLink, TextContent

from aivp.app import build_server

from .conftest import make_settings, ok, partials, png, refused

pytestmark = pytest.mark.anyio


async def test_tool_list_is_documented_annotated_and_small(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= {"generate_image", "edit_image", "generate_video", "queue_status", "cancel_job",
                          "search_models", "upload_file"}
    for t in tools.values():
        assert t.description and len(t.description) > 60, t.name
        assert t.annotations is not None and t.output_schema is not None, t.name
        assert "ctx" not in t.input_schema["properties"]
        for name, prop in t.input_schema["properties"].items():
            # a property goes without a description only where its name and enum say it all
            assert prop.get("description") or name in SELF_EXPLANATORY, f"{t.name}.{name} has no description"
        assert t.input_schema["additionalProperties"] is False, t.name
    # hints equal to the spec's defaults are left out (readOnly false, destructive true, openWorld true)
    assert tools["cancel_job"].annotations.destructive_hint in (True, None)
    assert tools["generate_video"].annotations.destructive_hint is False
    assert tools["search_models"].annotations.read_only_hint is True
    assert tools["list_assets"].annotations.open_world_hint is False
    assert tools["generate_video"].annotations.open_world_hint in (True, None)
    wire = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools.values()]
    size = len(json.dumps(wire, separators=(",", ":")))
    assert size <= 25_000, f"tools/list is {size} characters of compact JSON; every agent reads it every turn"


SELF_EXPLANATORY = {"seed", "negative_prompt", "limit", "provider", "task", "prefer", "tier", "kind", "stages", "shots"}


async def test_generate_image_file_record_thumbnail_and_progress(client: Client, project: Path, sandbox: Any) -> None:
    seen: list[tuple[float, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append((p, message))

    r = await client.call_tool("generate_image", {"prompt": "Elena on a cliff at golden hour", "aspect_ratio": "16:9",
                                                  "output": "image/frames/shot-01-ff.png"}, progress_callback=on_progress)
    assert not r.is_error, r.content[0].text
    job = r.structured_content
    assert job["status"] == "completed" and job["files"][0]["path"] == "image/frames/shot-01-ff.png"
    assert (project / "image/frames/shot-01-ff.png").is_file() and partials(project) == []
    assert len(seen) >= 3 and [p for p, _ in seen] == sorted(p for p, _ in seen)
    assert any("queued" in (m or "") for _, m in seen) and any("running" in (m or "") for _, m in seen)
    kinds = [type(c) for c in r.content]
    assert kinds[0] is TextContent and ImageContent in kinds and ResourceLink in kinds
    thumb = next(c for c in r.content if isinstance(c, ImageContent))
    assert len(base64.b64decode(thumb.data)) <= 40_000
    record = json.loads((project / "image/log/shot-01-ff.json").read_text())
    for field in ("id", "type", "file", "model", "mode", "status", "request_id", "prompt", "seed", "aspect_ratio",
                  "output_url", "cost_usd", "timestamp", "parameters", "provider"):
        assert field in record, field
    assert record["type"] == "keyframe" and record["mode"] == "T2I" and record["cost_usd"] == 0  # a sandbox job:
    assert record["sandbox"] is True and record["would_cost_usd"] == pytest.approx(0.15)  # what fal would charge
    plan = (project / "image/plan.md").read_text()
    assert "| 1 | shot-01-ff | `image/frames/shot-01-ff.png` | `fal-ai/nano-banana-pro` | T2I | done |" in plan
    body = await client.read_resource(job["files"][0]["uri"])
    assert base64.b64decode(body.contents[0].blob) == (project / "image/frames/shot-01-ff.png").read_bytes()
    assert sandbox.submission_count() == 1


async def test_animate_a_project_keyframe(client: Client, project: Path, sandbox: Any) -> None:
    png(project / "image/frames/shot-02-ff.png")
    job = await ok(client, "generate_video", {"prompt": "She turns to the sea. [Camera: slow push-in]",
                                              "image": "image/frames/shot-02-ff.png", "duration": 5,
                                              "output": "video/clips/shot-02.mp4"})
    clip = job["files"][0]
    assert clip["path"] == "video/clips/shot-02.mp4" and clip["duration_s"] == pytest.approx(5.0, abs=0.1)
    assert clip["check"]["ok"] and clip["has_audio"] is True
    from aivp.media import image_size

    assert clip["poster"] == "video/posters/shot-02.jpg" and image_size(project / clip["poster"]) == (clip["width"], clip["height"])
    record = json.loads((project / "video/log/shot-02.json").read_text())
    assert record["mode"] == "I2V" and record["input_image"] == "image/frames/shot-02-ff.png"
    assert record["parameters"]["image_url"]["path"] == "image/frames/shot-02-ff.png"
    assert record["parameters"]["image_url"]["url"].startswith(sandbox.fal_cdn_url)
    assert "| shot-02 | `video/clips/shot-02.mp4`" in (project / "video/plan.md").read_text()
    sub = sandbox.submissions[-1]
    assert sub.endpoint == "bytedance/seedance-2.0/image-to-video" and sub.payload["duration"] == "5"  # the default since Seedance 2.0


async def test_edit_upscale_and_references(client: Client, project: Path, sandbox: Any) -> None:
    png(project / "image/characters/elena-front.png")
    png(project / "image/locations/cliff.png", color="navy")
    up = await ok(client, "edit_image", {"image": "image/characters/elena-front.png", "operation": "upscale"})
    assert up["model"] == "aura-sr" and (project / up["files"][0]["path"]).is_file()
    edit = await ok(client, "edit_image", {"image": "image/locations/cliff.png", "prompt": "Put the woman from image 2 here",
                                           "references": ["image/characters/elena-front.png"], "num_images": 2})
    assert len(edit["files"]) == 2 and edit["estimate_usd"] == pytest.approx(0.30)
    payload = sandbox.submissions[-1].payload
    assert len(payload["image_urls"]) == 2 and payload["num_images"] == 2
    gen = await ok(client, "generate_image", {"prompt": "Elena in the rain", "references": ["image/characters/elena-front.png"]})
    assert gen["endpoint"] == "fal-ai/nano-banana-pro/edit"
    uploads = [r for r in sandbox.requests if r.route == "upload"]
    assert len(uploads) == 2  # elena-front uploaded once, then reused from the upload cache


async def test_wait_exceeded_then_queue_status_returns_the_file(client: Client, project: Path, sandbox: Any) -> None:
    first = await client.call_tool("generate_video", {"prompt": "rain on a window [sandbox:slow=1.5]", "wait_s": 0.2})
    assert not first.is_error
    job = first.structured_content
    assert job["done"] is False and job["status"] in ("pending", "submitting", "queued", "running")
    assert "queue_status" in job["next_step"]
    seen: list[float] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append(p)

    r = await client.call_tool("queue_status", {"job_id": job["job_id"], "wait_s": 20}, progress_callback=on_progress)
    assert not r.is_error
    done = r.structured_content["job"]
    assert done["status"] == "completed" and (project / done["files"][0]["path"]).is_file()
    assert seen and sandbox.submission_count() == 1


async def test_same_call_twice_submits_once(client: Client, sandbox: Any) -> None:
    args = {"prompt": "a lighthouse at dusk", "seed": 7}
    a = await ok(client, "generate_image", args)
    b = await ok(client, "generate_image", args)
    assert b["reused"] is True and b["cost_usd"] == 0 and b["files"] == a["files"] and b["job_id"] == a["job_id"]
    assert sandbox.submission_count() == 1
    async with anyio.create_task_group() as tg:  # two identical calls at once: the second joins the first
        results: list[dict[str, Any]] = []

        async def one() -> None:
            results.append(await ok(client, "generate_image", {"prompt": "a harbour at dawn"}))

        tg.start_soon(one)
        tg.start_soon(one)
    assert results[0]["job_id"] == results[1]["job_id"] and sandbox.submission_count() == 2
    c = await ok(client, "generate_image", {**args, "fresh": True})
    assert c["job_id"] != a["job_id"] and sandbox.submission_count() == 3


async def test_rate_limit_and_ingress_errors_are_retried(client: Client, sandbox: Any) -> None:
    sandbox.fault("submit", status=429, headers={"Retry-After": "1"}, body={"detail": "Too many requests"})
    sandbox.fault("status", preset="ingress_503", times=2)
    sandbox.fault("stream", status=500, times=5)
    job = await ok(client, "generate_image", {"prompt": "a retry test"})
    assert job["status"] == "completed"
    assert sandbox.submission_count() == 1
    assert sum(1 for r in sandbox.requests if r.route == "submit") == 2


@pytest.mark.parametrize("preset", ["fal_503", "ingress_504", "server_error_500"])
async def test_a_server_error_to_a_submit_is_not_repeated_or_called_free(client: Client, project: Path, sandbox: Any,
                                                                          preset: str) -> None:
    sandbox.fault("submit", preset=preset, after=True)  # fal may have queued it before the error
    args = {"prompt": f"one submit only ({preset})"}
    text = await refused(client, "generate_image", args)
    assert "did not send it again" in text and "Nothing was charged" not in text and "<html" not in text
    text = await refused(client, "generate_image", args)  # the same call again must not pay twice either
    assert "answer was lost" in text
    assert sum(1 for r in sandbox.requests if r.route == "submit") == 1


async def test_an_ingress_503_to_a_submit_is_retried_because_fal_never_saw_it(client: Client, sandbox: Any) -> None:
    sandbox.fault("submit", preset="ingress_503")
    job = await ok(client, "generate_image", {"prompt": "retried at the gate"})
    assert job["status"] == "completed" and sandbox.submission_count() == 1


async def test_dropped_connection_during_download_resumes(client: Client, project: Path, sandbox: Any) -> None:
    sandbox.fault("cdn_get", action="drop_body", times=1, match="/out/")
    job = await ok(client, "generate_video", {"prompt": "waves, a dropped download"})
    out = project / job["files"][0]["path"]
    assert out.is_file() and job["files"][0]["check"]["ok"] and partials(project) == []
    gets = [r for r in sandbox.requests if r.route == "cdn_get"]
    assert len(gets) >= 2


async def test_stuck_queue_then_cancel(client: Client, project: Path, sandbox: Any) -> None:
    sandbox.stick_queue(True)
    first = await client.call_tool("generate_video", {"prompt": "a stuck job", "wait_s": 0.5})
    job = first.structured_content
    assert job["status"] == "queued"
    r = await client.call_tool("cancel_job", {"job_id": job["job_id"]})
    assert not r.is_error
    assert r.structured_content["status"] == "canceled" and r.structured_content["cost_usd"] == 0
    listing = await ok(client, "queue_status", {})
    assert listing["recent"][0]["status"] == "canceled"
    assert not (project / "video").exists() or not any((project / "video").rglob("*.mp4"))
    assert sandbox.submission_count() == 1


async def test_expired_output_url_is_a_clear_failure(paid_client: Client, project: Path, sandbox: Any) -> None:
    sandbox.expire_outputs(404)
    text = await refused(paid_client, "generate_image", {"prompt": "an expired link"})
    assert "expired" in text and "http" in text
    assert not (project / "image/generated").exists() or list((project / "image/generated").iterdir()) == []
    assert partials(project) == []
    listing = await ok(paid_client, "queue_status", {})
    assert listing["recent"][0]["status"] == "failed" and listing["recent"][0]["cost_usd"] == pytest.approx(0.15)


async def test_provider_validation_error_and_safety_refusal(client: Client, project: Path, sandbox: Any) -> None:
    text = await refused(client, "generate_video", {"prompt": "a clip", "image": "https://unreachable.invalid/k.png"})
    assert "rejected the input" in text and "file_download_error" in text
    text = await refused(client, "generate_image", {"prompt": "[sandbox:unsafe] something the filter refuses"})
    assert "content checker refused" in text and "Rephrase" in text
    listing = await ok(client, "queue_status", {})
    assert [j["status"] for j in listing["recent"][:2]] == ["failed", "failed"]
    assert listing["recent"][0]["cost_usd"] == 0
    assert partials(project) == [] and not (project / "image/generated").exists()


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/hostname", "file:///etc/hostname", "image/link.png",
                                 ".aivp/ledger.sqlite3"])
async def test_inputs_outside_the_project_are_refused(client: Client, project: Path, sandbox: Any, bad: str) -> None:
    outside = png(project.parent / "outside.png")
    (project / "image").mkdir(exist_ok=True)
    (project / "image/link.png").symlink_to(outside)
    before = sorted(p.name for p in project.parent.iterdir())
    text = await refused(client, "generate_video", {"prompt": "x", "image": bad})
    assert "project" in text or "URL" in text or ".aivp" in text
    text = await refused(client, "upload_file", {"path": bad})
    assert sandbox.submission_count() == 0
    assert not [r for r in sandbox.requests if r.route in ("upload", "initiate", "signed_put")]
    assert sorted(p.name for p in project.parent.iterdir()) == before


async def test_outputs_outside_the_project_are_refused(client: Client, project: Path, sandbox: Any) -> None:
    for bad in ("../escape.png", str(project.parent / "escape.png")):
        text = await refused(client, "generate_image", {"prompt": "x", "output": bad})
        assert "outside the project" in text
    assert sandbox.submission_count() == 0 and not (project.parent / "escape.png").exists()


async def test_budget_cap_refuses_before_submit(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox, budget_usd=0.20, sandboxes=())  # the sandbox as a paid provider
    async with Client(build_server(settings)) as c:
        await ok(c, "generate_image", {"prompt": "within budget"})
        text = await refused(c, "generate_image", {"prompt": "over budget"})
        assert "budget" in text and "Nothing was sent" in text and "$0.15" in text
        status = await ok(c, "queue_status", {})
        assert status["spent_usd"] == pytest.approx(0.15) and status["budget_usd"] == 0.20
    assert sandbox.submission_count() == 1


async def test_bad_model_and_values_refused_before_submit(client: Client, sandbox: Any) -> None:
    text = await refused(client, "generate_video", {"prompt": "x", "model": "seedanse"})
    assert "Unknown model" in text and "seedance-1.5-pro" in text
    text = await refused(client, "generate_video", {"prompt": "x", "model": "seedance-1.5-pro", "duration": 20})
    assert "4s" in text and "12s" in text
    text = await refused(client, "generate_video", {"prompt": "x", "model": "veo-3.1", "resolution": "8k"})
    assert "choose one of" in text and "1080p" in text
    text = await refused(client, "generate_image", {"prompt": "x", "options": {"made_up": 1}})
    assert "no option 'made_up'" in text
    listing = await ok(client, "queue_status", {})
    assert listing["recent"] == [] and sandbox.submission_count() == 0


async def test_missing_key_fails_only_the_call_that_needs_it(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox, keys={"fal": None})
    async with Client(build_server(settings)) as c:
        found = await ok(c, "search_models", {"task": "i2v", "capabilities": ["end-frame"], "limit": 3})
        assert found["models"] and all("end-frame" in m["tags"] for m in found["models"])
        text = await refused(c, "generate_image", {"prompt": "x"})
        assert "FAL_KEY is not set" in text
        assert (await ok(c, "queue_status", {}))["recent"] == []
    assert sandbox.submission_count() == 0


async def test_search_models_ranks_and_details(client: Client) -> None:
    cheap = await ok(client, "search_models", {"task": "t2v", "prefer": "price", "limit": 3})
    costs = [m["typical_cost_usd"] for m in cheap["models"]]
    assert costs[0] <= max(costs)
    under = await ok(client, "search_models", {"task": "t2i", "max_price_usd": 0.05, "limit": 50})
    assert under["models"] and all(m["typical_cost_usd"] <= 0.05 for m in under["models"])
    card = await ok(client, "search_models", {"model": "seedance"})
    params = {p["name"]: p for e in card["detail"]["endpoints"] for p in e["params"]}
    # "seedance" names Seedance 2.0 since it became the default: its duration may be "auto" (the model picks)
    assert params["duration"]["values"][:2] == ["auto", "4"] and params["resolution"]["default"] == "720p"
    assert card["detail"]["endpoints"][0]["pricing"]["unit"] == "video_token"


async def test_several_images_come_back_as_one_labelled_sheet_within_the_budget(client: Client) -> None:
    import io

    from PIL import Image

    r = await client.call_tool("generate_image", {"prompt": "four takes of a lighthouse", "num_images": 4})
    assert not r.is_error, r.content[0].text
    files = r.structured_content["files"]
    previews = [c for c in r.content if isinstance(c, ImageContent)]
    assert len(files) == 4 and len(previews) == 1  # one sheet shows all four, not the first alone
    data = base64.b64decode(previews[0].data)
    assert len(data) <= 40_000
    with Image.open(io.BytesIO(data)) as sheet:
        assert sheet.width >= 4 * 100 and sheet.width > sheet.height  # four tiles in a row
    one = await client.call_tool("generate_image", {"prompt": "one lighthouse"})
    with Image.open(io.BytesIO(base64.b64decode(next(c for c in one.content if isinstance(c, ImageContent)).data))) as im:
        assert max(im.size) <= 320


async def test_remove_background_says_whether_the_result_is_transparent(client: Client, project: Path) -> None:
    png(project / "image/ref.png")
    r = await client.call_tool("edit_image", {"image": "image/ref.png", "operation": "remove_background"})
    assert not r.is_error, r.content[0].text
    text = r.content[0].text
    from aivp.media import has_alpha

    alpha = has_alpha(project / r.structured_content["files"][0]["path"])
    assert ("transparent background" in text) if alpha else ("plain white, not transparent" in text)


async def test_search_models_text_carries_the_facts_once_not_a_json_dump(client: Client) -> None:
    r = await client.call_tool("search_models", {"task": "t2v", "limit": 3, "live": False})
    text, found = r.content[0].text, r.structured_content
    assert isinstance(text, str) and found is not None and not text.lstrip().startswith("{")
    for m in found["models"]:  # every model's id, price and typical cost are in the text an agent reads
        assert m["id"] in text and f"${m['typical_cost_usd']:.2f}" in text
    assert len(text) < len(json.dumps(found))
    card = await client.call_tool("search_models", {"model": "seedance-2.0"})
    assert isinstance(card.content[0].text, str) and card.structured_content is not None
    detail = card.structured_content["detail"]
    for e in detail["endpoints"]:
        assert e["endpoint"] in card.content[0].text
    assert "duration [string, one of auto|4|5|" in card.content[0].text  # values as an agent passes them


async def test_upload_file_returns_a_cdn_url_once(client: Client, project: Path, sandbox: Any) -> None:
    png(project / "image/styles/mood.png")
    a = await ok(client, "upload_file", {"path": "image/styles/mood.png"})
    b = await ok(client, "upload_file", {"path": "image/styles/mood.png"})
    assert a["url"].startswith(sandbox.url) and a["cached"] is False and b["cached"] is True and a["url"] == b["url"]
    async with httpx.AsyncClient() as http:
        assert (await http.get(a["url"])).content == (project / "image/styles/mood.png").read_bytes()


async def test_queue_status_adopts_a_request_made_outside_aivp(client: Client, project: Path, sandbox: Any) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{sandbox.fal_queue_url}/fal-ai/nano-banana-pro", json={"prompt": "made elsewhere"},
                            headers={"Authorization": "Key someone-else"})
        request_id = r.json()["request_id"]
    st = await ok(client, "queue_status", {"model": "fal-ai/nano-banana-pro", "request_id": request_id, "wait_s": 10})
    job = st["job"]
    assert job["status"] == "completed" and (project / job["files"][0]["path"]).is_file()
    again = await ok(client, "queue_status", {"model": "fal-ai/nano-banana-pro", "request_id": request_id})
    assert again["job"]["job_id"] == job["job_id"] and sandbox.submission_count() == 1


async def test_cancelled_tool_call_detaches_and_the_job_finishes(client: Client, project: Path, sandbox: Any) -> None:
    with anyio.move_on_after(0.3):
        await client.call_tool("generate_video", {"prompt": "keeps going [sandbox:slow=1]"})
    listing = await ok(client, "queue_status", {})
    job_id = listing["recent"][0]["job_id"]
    done = await ok(client, "queue_status", {"job_id": job_id, "wait_s": 15})
    assert done["job"]["status"] == "completed" and (project / done["job"]["files"][0]["path"]).is_file()
    assert sandbox.submission_count() == 1


async def test_resources_and_prompts(client: Client, project: Path) -> None:
    uris = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {"aivp://skill", "aivp://models"} <= uris
    models = json.loads((await client.read_resource("aivp://models")).contents[0].text)
    assert any(m["id"] == "kling-o3-pro" for m in models["models"])
    card = json.loads((await client.read_resource("aivp://models/fal-ai/veo3.1")).contents[0].text)
    assert card["id"] == "veo-3.1"
    job = await ok(client, "generate_image", {"prompt": "resource check"})
    res = json.loads((await client.read_resource(f"aivp://jobs/{job['job_id']}")).contents[0].text)
    assert res["status"] == "completed"
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert {"animate_keyframe", "character_sheet"} <= prompts
    got = await client.get_prompt("character_sheet", {"name": "Elena", "description": "red hair, green coat"})
    assert "image/characters/elena-front.png" in got.messages[0].content.text


async def test_dry_run_estimates_without_sending(client: Client, project: Path, sandbox: Any) -> None:
    png(project / "image/frames/shot-03-ff.png")
    est = await ok(client, "generate_video", {"prompt": "x", "image": "image/frames/shot-03-ff.png", "model": "veo-3.1-fast",
                                              "duration": 8, "audio": False, "dry_run": True})
    assert est["status"] == "estimate" and est["estimate_usd"] > 0 and est["request"]["image_url"]["path"]
    assert sandbox.submission_count() == 0 and (await ok(client, "queue_status", {}))["recent"] == []
    assert not [r for r in sandbox.requests if r.route == "upload"]


async def test_large_uploads_use_multipart_and_fall_back_to_a_signed_url(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox, multipart_threshold=4096, part_size=4096)
    png(project / "image/big.png", size=(300, 300), color="purple")
    from PIL import Image

    Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(project / "image/noise.png")
    async with Client(build_server(settings)) as c:
        up = await ok(c, "upload_file", {"path": "image/noise.png"})
        parts = [r for r in sandbox.requests if r.route == "multipart_part"]
        assert len(parts) >= 2 and any(r.route == "multipart_complete" for r in sandbox.requests)
        async with httpx.AsyncClient() as http:
            assert (await http.get(up["url"])).content == (project / "image/noise.png").read_bytes()
        sandbox.fault("upload", status=500, times=None)
        sandbox.fault("multipart_init", status=500, times=None)
        small = await ok(c, "upload_file", {"path": "image/big.png"})
        signed = [r for r in sandbox.requests if r.route == "signed_put"]
        assert signed and not any(k.lower() == "authorization" for k in signed[0].headers)
        async with httpx.AsyncClient() as http:
            assert (await http.get(small["url"])).content == (project / "image/big.png").read_bytes()


async def test_lost_submit_answer_is_not_repeated_without_fresh(paid_client: Client, project: Path, sandbox: Any) -> None:
    sandbox.fault("submit", action="drop", after=True)  # fal takes the job, the answer never arrives
    args = {"prompt": "did it go through?"}
    text = await refused(paid_client, "generate_image", args)
    assert "did not send it again" in text and "fresh=true" in text
    assert sandbox.submission_count() == 1
    text = await refused(paid_client, "generate_image", args)
    assert "answer was lost" in text and sandbox.submission_count() == 1
    status = await ok(paid_client, "queue_status", {})
    assert status["recent"][0]["status"] == "unknown" and status["committed_usd"] == pytest.approx(0.15)
    job = await ok(paid_client, "generate_image", {**args, "fresh": True})
    assert job["status"] == "completed" and sandbox.submission_count() == 2


async def test_source_never_replaced_and_bytes_match_the_extension(client: Client, project: Path, sandbox: Any) -> None:
    from aivp.media import sniff_mime

    png(project / "image/styles/look.png")
    text = await refused(client, "edit_image", {"image": "image/styles/look.png", "operation": "upscale",
                                               "output": "image/styles/look.png", "overwrite": True})
    assert "never replaces a source" in text and sandbox.submission_count() == 0
    job = await ok(client, "edit_image", {"image": "image/styles/look.png", "operation": "upscale",
                                          "output": "image/styles/look-4x.jpg"})
    out = project / job["files"][0]["path"]
    assert out.suffix == ".jpg" and sniff_mime(out) == "image/jpeg"
    assert any("re-encoded" in w for w in job["warnings"])


async def test_files_inside_options_are_uploaded(client: Client, project: Path, sandbox: Any) -> None:
    png(project / "image/characters/ada-front.png")
    png(project / "image/frames/base.png", color="olive")
    await ok(client, "edit_image", {
        "image": "image/frames/base.png", "operation": "restyle", "model": "flux-general", "prompt": "Ada in the rain",
        "options": {"ip_adapters": [{"path": "XLabs-AI/flux-ip-adapter", "image_url": "image/characters/ada-front.png",
                                     "scale": 0.7, "image_encoder_path": "openai/clip-vit-large-patch14"}]}})
    payload = sandbox.submissions[-1].payload
    assert payload["ip_adapters"][0]["image_url"].startswith(sandbox.fal_cdn_url)
    text = await refused(client, "edit_image", {
        "image": "image/frames/base.png", "operation": "restyle", "model": "flux-general", "prompt": "x",
        "options": {"ip_adapters": [{"path": "p", "image_url": "../escape.png", "scale": 0.7, "image_encoder_path": "e"}]}})
    assert "outside the project" in text


async def test_request_forgotten_by_the_provider_ends_the_job(client: Client, sandbox: Any) -> None:
    sandbox.fault("stream", status=404, times=None)
    sandbox.fault("status", status=404, body={"detail": "Request not found"}, times=None)
    text = await refused(client, "generate_image", {"prompt": "forgotten"})
    assert "does not know request" in text and "cannot be followed" in text


async def test_an_output_url_is_reused_as_the_local_file(client: Client, project: Path, sandbox: Any) -> None:
    first = await ok(client, "generate_image", {"prompt": "a keyframe to animate"})
    url = first["files"][0]["url"]
    uploads_before = len([r for r in sandbox.requests if r.route == "upload"])
    await ok(client, "generate_video", {"prompt": "animate it", "image": url})
    payload = sandbox.submissions[-1].payload
    assert payload["image_url"] != url and payload["image_url"].startswith(sandbox.fal_cdn_url)
    assert len([r for r in sandbox.requests if r.route == "upload"]) == uploads_before + 1  # re-hosted from disk


async def test_the_env_file_cannot_be_read_through_a_resource_or_uploaded(client: Client, project: Path,
                                                                          sandbox: Any) -> None:
    from mcp.shared.exceptions import MCPError

    (project / ".env").write_text("FAL_KEY=leaky-id:leaky-secret-value\n")
    with pytest.raises(MCPError, match="hidden"):
        await client.read_resource("aivp://files/.env")
    text = await refused(client, "upload_file", {"path": ".env"})
    assert "hidden" in text and not [r for r in sandbox.requests if r.route == "upload"]


async def test_an_unsaveable_target_is_refused_before_anything_is_paid(client: Client, project: Path,
                                                                      sandbox: Any) -> None:
    (project / "image").mkdir()
    (project / "image" / "frames").write_text("a file where a folder should be")
    text = await refused(client, "generate_image", {"prompt": "blocked save", "output": "image/frames/shot-09-ff.png"})
    assert "image/frames is a file" in text and sandbox.submission_count() == 0
    text = await refused(client, "generate_image", {"prompt": "x", "output": "image/styles/a|b.png"})
    assert "'|'" in text and sandbox.submission_count() == 0


async def test_a_failed_save_keeps_the_paid_job_and_retries_on_queue_status(paid_client: Client, project: Path,
                                                                             sandbox: Any) -> None:
    # Issue 9: a save that fails after payment ends 'unsaved' (terminal, paid, with where the files are),
    # not an endless 'fetching'; queue_status saves it again, under another name if asked.
    first = await ok(paid_client, "generate_image", {"prompt": "blocked save [sandbox:slow=0.6]",
                                                 "output": "image/frames/shot-09-ff.png", "wait_s": 0})
    (project / "image").mkdir(exist_ok=True)
    (project / "image" / "frames").write_text("a file where a folder should be")  # appears after the submit
    r = await paid_client.call_tool("queue_status", {"job_id": first["job_id"], "wait_s": 10})
    assert r.is_error
    text = r.content[0].text
    assert "unsaved" in text and "could not save the result of this paid job" in text and "queue_status" in text
    listing = await ok(paid_client, "queue_status", {})
    row = next(j for j in listing["recent"] if j["job_id"] == first["job_id"])
    assert row["status"] == "unsaved" and row["cost_usd"] > 0 and listing["committed_usd"] == 0
    assert partials(project) == []
    moved = await ok(paid_client, "queue_status", {"job_id": first["job_id"], "output": "image/styles/rescued.png",
                                              "wait_s": 10})
    assert moved["job"]["status"] == "completed" and (project / "image/styles/rescued.png").is_file()
    assert sandbox.submission_count() == 1


async def test_broken_plan_table_does_not_fail_the_job(client: Client, project: Path, sandbox: Any) -> None:
    (project / "image").mkdir()
    (project / "image" / "plan.md").write_bytes("| 编号 | 说明 |\n".encode("gbk"))  # not UTF-8
    job = await ok(client, "generate_image", {"prompt": "plan in gbk", "output": "image/frames/shot-08-ff.png"})
    assert job["status"] == "completed" and (project / "image/log/shot-08-ff.json").is_file()
    assert (project / "image" / "plan.md").read_bytes() == "| 编号 | 说明 |\n".encode("gbk")  # left as people wrote it


async def test_reuse_needs_the_same_file_not_just_the_same_name(client: Client, project: Path, sandbox: Any) -> None:
    apple = {"prompt": "a red apple", "output": "image/styles/look.png"}
    first = await ok(client, "generate_image", apple)
    car = await ok(client, "generate_image", {"prompt": "a blue car", "output": "image/styles/look.png", "overwrite": True})
    assert car["files"][0]["path"] == "image/styles/look.png"
    again = await ok(client, "generate_image", apple)  # the apple's file was replaced by the car: not reusable
    assert again["reused"] is False and again["job_id"] != first["job_id"] and sandbox.submission_count() == 3
    same = await ok(client, "generate_image", apple)
    assert same["reused"] is True and sandbox.submission_count() == 3


async def test_failed_jobs_show_in_plan_and_records_do_not_collide(client: Client, project: Path, sandbox: Any) -> None:
    await refused(client, "generate_image", {"prompt": "[sandbox:unsafe] x", "output": "image/frames/shot-07-ff.png"})
    assert "| `image/frames/shot-07-ff.png` |" in (project / "image/plan.md").read_text()
    assert "| failed |" in (project / "image/plan.md").read_text()
    await ok(client, "generate_image", {"prompt": "harbour plate", "output": "image/locations/harbor.png"})
    await ok(client, "generate_image", {"prompt": "harbour style", "output": "image/styles/harbor.png"})
    records = {json.loads(p.read_text())["file"] for p in (project / "image/log").glob("*harbor.json")}
    assert records == {"image/locations/harbor.png", "image/styles/harbor.png"}
