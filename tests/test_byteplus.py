"""BytePlus ModelArk Seedream: the MCP tools end to end against the sandbox, and the wire details against
httpx.MockTransport."""

from __future__ import annotations

import base64
import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from aivp.app import build_server
from aivp.errors import (
    InputFileError,
    InvalidParameterError,
    JobFailed,
    JobNotFound,
    ProviderAuthError,
    ProviderHTTPError,
    SafetyRefusal,
    SubmitUncertain,
)
from aivp.providers.base import Completed, Handle
from aivp.providers.byteplus import BytePlusProvider, inline, wire_body
from aivp.settings import Settings

from .conftest import KEY_SECRET, all_text, make_settings, ok, partials, png, refused

ARK = "ark-aivp-test-key-Never-Print-77c3e"
ARK_URL = "https://ark.byteplus.test/api/v3"
MODEL = "seedream-4-5-251128"


def settings_for(project: Path, sandbox: Any, **overrides: Any) -> Settings:
    """Only an ARK key (no FAL key), unless the test says otherwise."""
    return make_settings(project, sandbox, keys={"fal": None, "byteplus": ARK}, **overrides)


@pytest.fixture
async def ark(project: Path, sandbox: Any) -> Any:
    async with Client(build_server(settings_for(project, sandbox))) as c:
        yield c


def generations(sandbox: Any) -> list[Any]:
    return [r for r in sandbox.requests if r.route == "byteplus_generate"]


# ---------------------------------------------------------------- end to end (MCP tools + sandbox)

pytestmark = pytest.mark.anyio


async def test_success_with_a_pixel_size_and_no_watermark(ark: Client, project: Path, sandbox: Any) -> None:
    job = await ok(ark, "generate_image", {"prompt": "a temple at golden hour", "model": "seedream-4.5",
                                           "aspect_ratio": "4:5", "size": "standard", "output": "image/frames/shot-01-ff.jpg"})
    assert job["provider"] == "byteplus" and job["endpoint"] == MODEL and job["request_id"]
    assert job["files"][0]["path"] == "image/frames/shot-01-ff.jpg" and partials(project) == []
    sub = sandbox.submissions[-1]
    assert sub.provider == "byteplus" and sub.request_id == job["request_id"]
    assert sub.payload == {"prompt": "a temple at golden hour", "size": "1920x2400", "response_format": "url",
                           "watermark": False, "model": MODEL}
    assert sub.headers["authorization"] == f"Bearer {ARK}"
    record = json.loads((project / "image/log/shot-01-ff.json").read_text())
    assert record["provider"] == "byteplus" and record["would_cost_usd"] == 0.03 and "/byteplus/tos/" in record["output_url"]
    assert record["cost_usd"] == 0 and record["sandbox"] is True
    assert record["effective_parameters"]["watermark"] is False
    assert sandbox.submission_count(provider="byteplus") == 1 and sandbox.submission_count() == 1


async def test_slow_generation_is_waited_for(ark: Client, project: Path, sandbox: Any) -> None:
    job = await ok(ark, "generate_image", {"prompt": "a long render [sandbox:slow=1.2]", "model": "seedream-4.5"})
    assert job["status"] == "completed"  # one call, held open for the whole synchronous generation
    assert (project / job["files"][0]["path"]).is_file() and len(generations(sandbox)) == 1


async def test_cancel_explains_there_is_nothing_to_cancel(ark: Client, project: Path, sandbox: Any) -> None:
    first = await ok(ark, "generate_image", {"prompt": "already paid for [sandbox:slow=1]", "model": "seedream-4.5",
                                             "wait_s": 0.2})
    assert first["done"] is False and first["status"] == "submitting"
    r = await ark.call_tool("cancel_job", {"job_id": first["job_id"]})
    assert not r.is_error, r.content[0].text
    assert "already finished" in r.content[0].text or "already ended" in r.content[0].text
    done = await ok(ark, "queue_status", {"job_id": first["job_id"], "wait_s": 10})
    assert done["job"]["status"] == "completed" and (project / done["job"]["files"][0]["path"]).is_file()
    assert sandbox.submission_count() == 1


async def test_validation_error_names_the_parameter(ark: Client, sandbox: Any) -> None:
    text = await refused(ark, "generate_image", {"prompt": "a banner", "model": "seedream-4.5", "size": "8704x448"})
    assert "BytePlus rejected size" in text and "aspect ratio" in text and "Nothing was charged" in text
    assert len(generations(sandbox)) == 1 and sandbox.submission_count() == 0
    text = await refused(ark, "generate_image", {"prompt": "x", "model": "seedream-4.5", "size": "1000x1000"})
    assert "3,686,400" in text and len(generations(sandbox)) == 1  # refused by aivp: nothing was sent


async def test_safety_refusals(ark: Client, project: Path, sandbox: Any) -> None:
    text = await refused(ark, "generate_image", {"prompt": "[sandbox:unsafe] refused", "model": "seedream-4.5"})
    assert "safety filter refused the prompt" in text and "InputTextSensitiveContentDetected" in text
    png(project / "image/ref.png")
    text = await refused(ark, "generate_image", {"prompt": "[sandbox:unsafe-image] x", "model": "seedream-4.5",
                                                 "references": ["image/ref.png"]})
    assert "refused a reference image" in text
    text = await refused(ark, "generate_image", {"prompt": "[sandbox:refuse-image=1] x", "model": "seedream-4.5"})
    assert "OutputImageSensitiveContentDetected" in text
    listing = await ok(ark, "queue_status", {})
    assert [j["cost_usd"] for j in listing["recent"][:3]] == [0, 0, 0]
    assert not list(project.glob("image/generated/*"))


async def test_429_with_and_without_retry_after(ark: Client, sandbox: Any) -> None:
    body = {"error": {"code": "RateLimitExceeded.EndpointRPMExceeded", "message": "Too many requests.",
                      "param": "", "type": "TooManyRequests"}}
    sandbox.fault("byteplus_generate", status=429, headers={"Retry-After": "1"}, body=body)
    job = await ok(ark, "generate_image", {"prompt": "throttled once", "model": "seedream-4.5"})
    assert job["status"] == "completed"  # Retry-After itself is honoured in test_http_retry.py
    sandbox.fault("byteplus_generate", status=429, body=body, times=2)
    job = await ok(ark, "generate_image", {"prompt": "throttled twice", "model": "seedream-4.5"})
    assert job["status"] == "completed"
    assert len(generations(sandbox)) == 5 and sandbox.submission_count() == 2


async def test_5xx_on_the_image_read_is_retried_and_on_the_submit_is_not(ark: Client, project: Path,
                                                                         sandbox: Any) -> None:
    sandbox.fault("byteplus_image", status=503)
    job = await ok(ark, "generate_image", {"prompt": "a bumpy download", "model": "seedream-4.5"})
    assert (project / job["files"][0]["path"]).is_file()
    assert len([r for r in sandbox.requests if r.route == "byteplus_image"]) == 2
    sandbox.fault("byteplus_generate", status=500, after=True, headers={"x-should-retry": "true"},
                  body={"error": {"code": "InternalServiceError", "message": "internal error", "type": "InternalServerError"}})
    text = await refused(ark, "generate_image", {"prompt": "made, then a 500", "model": "seedream-4.5"})
    assert "HTTP 500" in text and "did not send it again" in text
    assert len(generations(sandbox)) == 2 and sandbox.submission_count() == 2


async def test_expired_image_link_is_a_clear_failure(ark: Client, project: Path, sandbox: Any) -> None:
    sandbox.expire_outputs(403)
    text = await refused(ark, "generate_image", {"prompt": "an old link", "model": "seedream-4.5"})
    assert "expired" in text and "403" in text and "/byteplus/tos/" in text
    assert partials(project) == [] and not list(project.glob("image/generated/*"))


async def test_sequential_set_with_one_image_refused(ark: Client, project: Path, sandbox: Any) -> None:
    job = await ok(ark, "generate_image", {
        "prompt": "a four-panel story of a fox [sandbox:refuse-image=2]", "model": "seedream-4.5",
        "options": {"sequential_image_generation": "auto", "sequential_image_generation_options": {"max_images": 3}}})
    assert len(job["files"]) == 2 and all((project / f["path"]).is_file() for f in job["files"])
    assert job["estimate_usd"] == pytest.approx(0.09) and job["would_cost_usd"] == pytest.approx(0.06)  # per image back
    assert any("Image 2 of 3" in w and "safety filter" in w for w in job["warnings"])
    record = json.loads((project / f"image/log/{Path(job['files'][0]['path']).stem}.json").read_text())
    assert any("Image 2 of 3" in w for w in record["warnings"])


async def test_b64_answers_and_references_as_data_uris(ark: Client, project: Path, sandbox: Any) -> None:
    png(project / "image/characters/mara-front.png", color="maroon")
    job = await ok(ark, "generate_image", {"prompt": "Mara on a pier", "model": "seedream-4.5",
                                           "references": ["image/characters/mara-front.png"],
                                           "options": {"response_format": "b64_json"}})
    out = project / job["files"][0]["path"]
    assert out.is_file() and out.read_bytes()[:2] == b"\xff\xd8"  # the inline JPEG, decoded
    sent = sandbox.submissions[-1].payload
    assert sent["response_format"] == "b64_json" and sent["image"][0].startswith("data:image/png;base64,")
    assert base64.b64decode(sent["image"][0].split(",", 1)[1]) == (project / "image/characters/mara-front.png").read_bytes()
    # neither the inline reference nor the inline answer is copied into records, the ledger or the result
    records = "".join(p.read_text() for p in (project / "image/log").glob("*.json"))
    assert "base64," not in records and "base64," not in json.dumps(job)
    with sqlite3.connect(project / ".aivp/ledger.sqlite3") as db:  # kept only until the files were written
        rows = db.execute("SELECT request_json, result_json, handle_json, outputs_json FROM jobs").fetchall()
    assert rows and "base64," not in json.dumps(rows)
    assert job["files"][0]["url"].startswith("data:image/jpeg;sha256=")


async def test_rehosting_before_animation(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox, keys={"byteplus": ARK})  # FAL and ARK keys
    async with Client(build_server(settings)) as c:
        still = await ok(c, "generate_image", {"prompt": "a keyframe", "model": "seedream",
                                               "output": "image/frames/shot-04-ff.jpg"})
        assert still["provider"] == "byteplus"
        url = still["files"][0]["url"]
        assert "/byteplus/tos/" in url
        for image in (url, "image/frames/shot-04-ff.jpg"):
            await ok(c, "generate_video", {"prompt": "slow push-in", "image": image})
            sent = sandbox.submissions[-1]
            assert sent.provider == "fal" and sent.payload["image_url"].startswith(sandbox.fal_cdn_url)
            assert "/byteplus/" not in sent.payload["image_url"]


async def test_provider_choice_by_key_call_and_alias(project: Path, sandbox: Any) -> None:
    async with Client(build_server(settings_for(project, sandbox))) as c:  # only an ARK key
        assert (await ok(c, "generate_image", {"prompt": "ark only", "model": "seedream-4.5"}))["provider"] == "byteplus"
    async with Client(build_server(make_settings(project, sandbox))) as c:  # only a FAL key
        assert (await ok(c, "generate_image", {"prompt": "fal only", "model": "seedream-4.5"}))["provider"] == "fal"
        text = await refused(c, "generate_image", {"prompt": "pinned", "model": "seedream"})
        assert "ARK_API_KEY is not set" in text
    both = make_settings(project, sandbox, keys={"byteplus": ARK})
    async with Client(build_server(both)) as c:
        for args, provider in (({"provider": "fal"}, "fal"), ({"provider": "byteplus"}, "byteplus"),
                               ({"model": "seedream"}, "byteplus"), ({"model": "byteplus"}, "byteplus")):
            job = await ok(c, "generate_image", {"prompt": f"by call {args}", "model": "seedream-4.5", **args})
            assert job["provider"] == provider, args
    async with Client(build_server(replace(both, providers=("byteplus",)))) as c:
        assert (await ok(c, "generate_image", {"prompt": "setting", "model": "seedream-4.5"}))["provider"] == "byteplus"


async def test_key_never_in_results_records_ledger_or_logs(project: Path, sandbox: Any,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    png(project / "image/ref.png")
    texts: list[str] = []
    async with Client(build_server(settings_for(project, sandbox))) as c:
        for args in ({"prompt": "scan"}, {"prompt": "scan refs", "references": ["image/ref.png"]},
                     {"prompt": "[sandbox:unsafe] scan"}, {"prompt": "scan", "size": "8704x448"}):
            r = await c.call_tool("generate_image", {"model": "seedream-4.5", **args})
            texts += [json.dumps([x.model_dump(mode="json") for x in r.content]), json.dumps(r.structured_content)]
        texts.append(json.dumps((await c.call_tool("queue_status", {})).structured_content))
    haystack = "\n".join(texts) + all_text(project) + caplog.text
    assert ARK not in haystack and KEY_SECRET not in haystack
    for rec in sandbox.requests:
        if ARK in rec.headers.get("authorization", ""):
            assert rec.route == "byteplus_generate", rec.route


async def test_sandbox_wire_checks(sandbox: Any) -> None:
    auth = {"Authorization": f"Bearer {ARK}"}
    url = f"{sandbox.ark_url}/images/generations"
    async with httpx.AsyncClient() as http:
        r = await http.post(url, json={"model": MODEL, "prompt": "x"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "AuthenticationError" and r.headers["x-request-id"]
        r = await http.post(url, json={"model": "seedream-9", "prompt": "x"}, headers=auth)
        assert r.status_code == 404 and r.json()["error"]["code"] == "InvalidEndpoint.NotFound"
        r = await http.post(url, json={"model": MODEL, "prompt": "x", "size": "4K", "image": ["data:text/plain,hi"]},
                            headers=auth)
        assert r.json()["error"]["code"] == "InvalidImageURL.InvalidFormat"
        r = await http.post(url, json={"model": MODEL, "prompt": "x", "image": ["data:image/png;base64,AAAA"] * 13,
                                       "sequential_image_generation": "auto",
                                       "sequential_image_generation_options": {"max_images": 3}}, headers=auth)
        assert r.json()["error"]["param"] == "sequential_image_generation_options.max_images"
        r = await http.post(url, json={"model": MODEL, "prompt": "x", "response_format": "png", "seed": None}, headers=auth)
        assert r.json()["error"]["param"] == "response_format"
        r = await http.post(url, json={"model": MODEL, "prompt": "x", "size": "2K", "watermark": None}, headers=auth)
        assert r.status_code == 200 and r.json()["usage"]["generated_images"] == 1 and r.json()["created"]
        link = r.json()["data"][0]["url"]
        assert "X-Tos-Expires=86400" in link and (await http.get(link)).status_code == 200
        assert (await http.get(link.replace("X-Tos-Signature=", "X-Tos-Signature=0"))).status_code == 403
    assert sandbox.submission_count(provider="byteplus") == 1


# ---------------------------------------------------------------- wire details (httpx.MockTransport)


def provider(handler: Any, tmp_path: Path, **overrides: Any) -> tuple[BytePlusProvider, httpx.AsyncClient]:
    s = make_settings(tmp_path, env={"AIVP_ARK_URL": ARK_URL}, keys={"fal": None, "byteplus": ARK},
                      **{"retry_base_s": 0.001, "retry_cap_s": 0.5, **overrides})
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return BytePlusProvider(s, client), client


def answer(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"model": MODEL, "created": 1, "data": list(entries), "usage": {"generated_images": len(entries)}}


def test_wire_body_defaults_and_size() -> None:
    body = wire_body(MODEL, {"prompt": "x", "size": {"width": 2560, "height": 3200}, "seed": None})
    assert body == {"prompt": "x", "size": "2560x3200", "response_format": "url", "watermark": False, "model": MODEL}
    assert wire_body(MODEL, {"prompt": "x", "watermark": True, "size": "4K"})["watermark"] is True
    assert inline(answer({"b64_json": "AAAA", "size": "2048x2048"}))["data"][0] == \
        {"size": "2048x2048", "url": "data:image/jpeg;base64,AAAA"}


async def test_submit_keeps_the_answer_and_watch_completes_at_once(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = answer({"url": "https://tos.test/a.jpeg?X-Tos-Expires=86400", "size": "2048x2048"},
                      {"error": {"code": "OutputImageSensitiveContentDetected", "message": "refused"}},
                      {"b64_json": base64.b64encode(b"\xff\xd8jpeg").decode(), "size": "1024x1024"})
        return httpx.Response(200, json=body, headers={"X-Request-Id": "rid-1"})

    bp, client = provider(handler, tmp_path)
    async with client:
        handle = await bp.submit(MODEL, {"prompt": "x", "sequential_image_generation": "auto"})
    assert seen[0].url == httpx.URL(f"{ARK_URL}/images/generations") and seen[0].headers["authorization"] == f"Bearer {ARK}"
    assert handle.request_id == "rid-1" and [s async for s in bp.watch(handle)] == [Completed()]
    result = await bp.result(handle)
    files = bp.outputs("images", result.output)
    assert [f.url[:22] for f in files] == ["https://tos.test/a.jpe", "data:image/jpeg;base64"]
    assert files[0].width == 2048 and files[1].content_type == "image/jpeg"
    assert bp.output_warnings("images", result.output) == [
        "Image 2 of 3 was refused by BytePlus's safety filter (OutputImageSensitiveContentDetected); the other images "
        "were saved. Rephrase the prompt to get it."]
    assert await bp.cancel(handle) is False
    with pytest.raises(JobNotFound):
        [s async for s in bp.watch(bp.handle_for(MODEL, "elsewhere"))]
    all_refused = Handle("byteplus", MODEL, "r2", {}, {"answer": answer(
        {"error": {"code": "OutputImageSensitiveContentDetected", "message": "refused"}})})
    with pytest.raises(SafetyRefusal):
        await bp.result(all_refused)
    with pytest.raises(JobFailed, match="no images"):
        await bp.result(Handle("byteplus", MODEL, "r3", {}, {"answer": answer()}))


@pytest.mark.parametrize(("status", "code", "param", "error", "words"), [
    (400, "InputTextSensitiveContentDetected", "", SafetyRefusal, "refused the prompt"),
    (400, "InputImageSensitiveContentDetected.PrivacyInformation", "image", SafetyRefusal, "reference image"),
    (400, "InvalidParameter", "size", InvalidParameterError, "rejected size"),
    (400, "MissingParameter", "prompt", InvalidParameterError, "rejected prompt"),
    (401, "AuthenticationError", "", ProviderAuthError, "ARK_API_KEY"),
    (403, "AccountOverdueError", "", ProviderAuthError, "overdue"),
    (404, "InvalidEndpoint.NotFound", "", ProviderHTTPError, "Activate the model in the Ark console"),
    (429, "RateLimitExceeded.EndpointRPMExceeded", "", ProviderHTTPError, "wait 900 s"),
    (500, "InternalServiceError", "", SubmitUncertain, "did not send it again"),
    (503, "ServiceUnavailable", "", SubmitUncertain, "did not send it again"),
])
async def test_errors_are_translated_and_never_repeated(tmp_path: Path, status: int, code: str, param: str,
                                                        error: type, words: str) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        headers = {"Retry-After": "900"} if status == 429 else {"x-should-retry": "true"}
        return httpx.Response(status, headers=headers, json={"error": {"code": code, "message": "m", "param": param,
                                                                       "type": "T"}})

    bp, client = provider(handler, tmp_path)
    async with client:
        with pytest.raises(error, match=words) as info:
            await bp.submit(MODEL, {"prompt": "x"})
    assert type(info.value) is error and len(calls) == 1


async def test_only_refused_or_unsent_requests_are_repeated(tmp_path: Path) -> None:
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append("x")
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(calls) == 2:
            return httpx.Response(429, json={"error": {"code": "RateLimitExceeded", "message": "slow"}})
        return httpx.Response(200, json=answer({"url": "https://tos.test/b.jpeg"}))

    bp, client = provider(flaky, tmp_path)
    async with client:
        await bp.submit(MODEL, {"prompt": "x"})
    assert len(calls) == 3
    calls.clear()

    def timeout(request: httpx.Request) -> httpx.Response:
        calls.append("x")
        raise httpx.ReadTimeout("no answer", request=request)

    bp, client = provider(timeout, tmp_path)
    async with client:
        with pytest.raises(SubmitUncertain, match="did not send it again"):
            await bp.submit(MODEL, {"prompt": "x"})
    assert len(calls) == 1


async def test_upload_is_a_data_uri_up_to_10_mb(tmp_path: Path) -> None:
    bp, _ = provider(lambda r: httpx.Response(500), tmp_path)
    small = png(tmp_path / "ref.png")
    uri = await bp.upload(small, "image/png")
    assert uri.startswith("data:image/png;base64,") and base64.b64decode(uri.split(",", 1)[1]) == small.read_bytes()
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"0" * (10 * 1024 * 1024))
    with pytest.raises(InputFileError, match="up to 10 MB"):
        await bp.upload(big, "image/png")
    with pytest.raises(InputFileError, match="only images"):
        await bp.upload(small, "video/mp4")


async def test_router_rules_of_the_fal_seedream_seed(project: Path, sandbox: Any) -> None:
    png(project / "image/ref.png")
    both = make_settings(project, sandbox, keys={"byteplus": ARK})
    async with Client(build_server(both)) as c:
        plain = await ok(c, "generate_image", {"prompt": "no model named", "dry_run": True})
        assert plain["model"] == "seedream-4.5" and plain["provider"] == "byteplus"
        fal_t2i = await ok(c, "generate_image", {"prompt": "fal routing", "model": "fal", "dry_run": True})
        assert fal_t2i["model"] == "flux-2-pro" and fal_t2i["provider"] == "fal"
        fal_edit = await ok(c, "generate_image", {"prompt": "fal routing", "model": "fal", "references": ["image/ref.png"],
                                                  "dry_run": True})
        assert fal_edit["endpoint"] == "fal-ai/nano-banana-pro/edit"
        for alias in ("nbp", "poster", "nano-banana-pro"):
            assert (await ok(c, "generate_image", {"prompt": "x", "model": alias, "dry_run": True}))["model"] == "nano-banana-pro"
        assert (await ok(c, "generate_image", {"prompt": "x", "model": "flux", "dry_run": True}))["model"] == "flux-2-pro"
    only_fal = make_settings(project, sandbox)
    async with Client(build_server(only_fal)) as c:
        assert (await ok(c, "generate_image", {"prompt": "x", "dry_run": True}))["model"] == "nano-banana-pro"
    configured = make_settings(project, sandbox, keys={"byteplus": ARK}, image_model="flux-2-turbo")
    async with Client(build_server(configured)) as c:
        assert (await ok(c, "generate_image", {"prompt": "x", "dry_run": True}))["model"] == "flux-2-turbo"
    assert sandbox.submission_count() == 0


async def test_image_model_fal_means_fal_routing_and_remove_background_keeps_its_specialist(project: Path,
                                                                                            sandbox: Any) -> None:
    png(project / "image/ref.png")
    settings = make_settings(project, sandbox, keys={"byteplus": ARK}, image_model="fal")
    async with Client(build_server(settings)) as c:
        assert (await ok(c, "generate_image", {"prompt": "x", "dry_run": True}))["model"] == "flux-2-pro"
        edit = await ok(c, "generate_image", {"prompt": "x", "references": ["image/ref.png"], "dry_run": True})
        assert edit["endpoint"] == "fal-ai/nano-banana-pro/edit"
        bg = await ok(c, "edit_image", {"image": "image/ref.png", "operation": "remove_background", "dry_run": True})
        assert bg["model"] == "bria-fibo-edit"
