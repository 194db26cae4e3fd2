"""Replicate: the MCP tools end to end against the sandbox, and the wire details against httpx.MockTransport."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from aivp.app import build_server
from aivp.errors import JobFailed, OutputLost, ProviderError, ProviderHTTPError, SafetyRefusal, SubmitUncertain
from aivp.providers.base import Canceled, Completed, Handle, Queued, Running
from aivp.providers.replicate import ReplicateProvider, describe, error_code, log_lines, parse_status
from aivp.settings import Settings

from .conftest import KEY_SECRET, all_text, make_settings, ok, partials, png, refused

TOKEN = "r8_aivpTestToken-Never-Print-5d1e9"
API = "https://api.replicate.test"
HEX = "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"


def settings_for(project: Path, sandbox: Any, **overrides: Any) -> Settings:
    """Only a Replicate token (no FAL key), unless the test says otherwise."""
    return make_settings(project, sandbox, keys={"fal": None, "replicate": TOKEN}, **overrides)


@pytest.fixture
async def rep(project: Path, sandbox: Any) -> Any:
    async with Client(build_server(settings_for(project, sandbox))) as c:
        yield c


def routes(sandbox: Any, name: str) -> list[Any]:
    return [r for r in sandbox.requests if r.route == name]


# ---------------------------------------------------------------- end to end (MCP tools + sandbox)

pytestmark = pytest.mark.anyio


async def test_success_answered_by_the_waited_create(rep: Client, project: Path, sandbox: Any) -> None:
    job = await ok(rep, "generate_image", {"prompt": "a red kite over dunes", "model": "flux-schnell", "num_images": 2,
                                           "aspect_ratio": "16:9", "output": "image/styles/kite.png"})
    assert job["provider"] == "replicate" and job["endpoint"] == "black-forest-labs/flux-schnell"
    assert [f["path"] for f in job["files"]] == ["image/styles/kite.png", "image/styles/kite-2.png"]
    assert all((project / f["path"]).is_file() for f in job["files"]) and partials(project) == []
    create = routes(sandbox, "replicate_create")[-1]
    assert create.headers["authorization"] == f"Bearer {TOKEN}" and create.headers["prefer"] == "wait=1"
    assert routes(sandbox, "replicate_get") == []  # the create itself carried the finished prediction
    sub = sandbox.submissions[-1]
    assert sub.provider == "replicate" and sub.payload == {"prompt": "a red kite over dunes", "num_outputs": 2,
                                                           "aspect_ratio": "16:9", "output_format": "png"}
    record = json.loads((project / "image/log/kite.json").read_text())
    assert record["provider"] == "replicate" and isinstance(record["seed"], int) and record["cost_usd"] == 0
    assert record["sandbox"] is True and record["would_cost_usd"] == 0.003  # what Replicate would have charged
    assert record["output_url"].startswith(f"{sandbox.replicate_url}/delivery/")
    assert sandbox.submission_count(provider="replicate") == 1 and sandbox.submission_count(provider="fal") == 0


async def test_single_url_output_and_a_pinned_version(rep: Client, project: Path, sandbox: Any) -> None:
    job = await ok(rep, "generate_image", {"prompt": "a lighthouse", "model": "flux-1.1-pro"})
    assert len(job["files"]) == 1 and (project / job["files"][0]["path"]).is_file()
    async with httpx.AsyncClient() as http:  # the sandbox answers a string for a single-image endpoint
        r = await http.get(f"{sandbox.replicate_url}/v1/predictions/{job['request_id']}",
                           headers={"Authorization": f"Bearer {TOKEN}"})
        assert isinstance(r.json()["output"], str)
        bad = await http.post(f"{sandbox.replicate_url}/v1/predictions", json={"version": "nope", "input": {}},
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert bad.status_code == 422 and "Invalid version" in bad.json()["title"]


async def test_slow_prediction_is_polled_to_the_end(rep: Client, project: Path, sandbox: Any) -> None:
    seen: list[str | None] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    r = await rep.call_tool("generate_image", {"prompt": "slow dawn [sandbox:slow=1.2]", "model": "flux-dev"},
                            progress_callback=on_progress)
    assert not r.is_error, r.content[0].text
    job = r.structured_content
    assert job["status"] == "completed" and (project / job["files"][0]["path"]).is_file()
    assert any("Using seed" in line or "Generating placeholder" in line for line in job["logs"])
    assert len(routes(sandbox, "replicate_get")) >= 2 and any("running" in (m or "") for m in seen)
    assert sandbox.submission_count() == 1


async def test_cancel_stops_the_prediction(rep: Client, project: Path, sandbox: Any) -> None:
    first = await ok(rep, "generate_image", {"prompt": "never starts [sandbox:stuck]", "model": "flux-dev",
                                             "wait_s": 0.2})
    assert first["done"] is False
    r = await rep.call_tool("cancel_job", {"job_id": first["job_id"]})
    assert not r.is_error, r.content[0].text
    job = r.structured_content
    assert job["status"] == "canceled" and job["cost_usd"] == 0
    assert len(routes(sandbox, "replicate_cancel")) == 1
    with anyio.fail_after(2):  # the sandbox's engine ends the job on its next tick
        while not sandbox.job(job["request_id"]).done:
            await anyio.sleep(0.01)
    assert not (project / "image").exists() or not list((project / "image").rglob("*.webp"))


async def test_validation_error_lists_the_invalid_fields(rep: Client, sandbox: Any) -> None:
    body = {"title": "Input validation failed", "status": 422,
            "detail": "- input.megapixels: megapixels must be one of the following: \"1\", \"0.25\"\n",
            "invalid_fields": [{"type": "enum", "field": "input.megapixels",
                                "description": "megapixels must be one of the following: \"1\", \"0.25\""}]}
    sandbox.fault("replicate_create", status=422, body=body, headers={"content-type": "application/problem+json"})
    text = await refused(rep, "generate_image", {"prompt": "x", "model": "flux-schnell"})
    assert "rejected the input" in text and "megapixels: megapixels must be one of" in text and "Nothing was charged" in text
    async with httpx.AsyncClient() as http:  # the sandbox's own check, against the catalog's params
        r = await http.post(f"{sandbox.replicate_url}/v1/models/black-forest-labs/flux-dev/predictions",
                            json={"input": {"prompt": "x", "num_outputs": 9}}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["invalid_fields"][0]["field"] == "input.num_outputs"
    assert sandbox.submission_count() == 0


async def test_safety_refusal_and_a_transient_failure(rep: Client, project: Path, sandbox: Any) -> None:
    text = await refused(rep, "generate_image", {"prompt": "[sandbox:unsafe] refused", "model": "flux-schnell"})
    assert "safety filter" in text and "E005" in text and "Rephrase" in text
    text = await refused(rep, "generate_image", {"prompt": "[sandbox:interrupted] flaky", "model": "flux-schnell"})
    assert "transient" in text and "PA" in text
    listing = await ok(rep, "queue_status", {})
    assert [j["status"] for j in listing["recent"][:2]] == ["failed", "failed"]
    assert [j["cost_usd"] for j in listing["recent"][:2]] == [0, 0]  # sandbox jobs: nothing charged
    # what Replicate would have charged: a transient failure may be billed (unknown), a safety refusal is not
    assert [j["would_cost_usd"] for j in listing["recent"][:2]] == [None, 0]
    assert partials(project) == [] and not (project / "image/generated").exists()


async def test_429_on_create_with_retry_after_and_on_reads_without(rep: Client, sandbox: Any) -> None:
    sandbox.fault("replicate_create", status=429, headers={"Retry-After": "1"},
                  body={"detail": "Request was throttled. Your rate limit resets in ~1s."})
    job = await ok(rep, "generate_image", {"prompt": "throttled create", "model": "flux-schnell"})
    assert job["status"] == "completed"  # Retry-After itself is honoured in test_http_retry.py
    assert len(routes(sandbox, "replicate_create")) == 2 and sandbox.submission_count() == 1
    sandbox.fault("replicate_get", status=429, body={"detail": "Request was throttled."}, times=2)
    job = await ok(rep, "generate_image", {"prompt": "throttled reads [sandbox:slow=1.1]", "model": "flux-schnell"})
    assert job["status"] == "completed" and sandbox.submission_count() == 2


async def test_5xx_on_reads_is_retried(rep: Client, sandbox: Any) -> None:
    sandbox.fault("replicate_get", status=503, body={"detail": "Service Unavailable", "status": 503}, times=2)
    job = await ok(rep, "generate_image", {"prompt": "bumpy reads [sandbox:slow=1.1]", "model": "flux-schnell"})
    assert job["status"] == "completed" and sandbox.submission_count() == 1
    assert len(routes(sandbox, "replicate_get")) >= 3


async def test_5xx_on_create_is_never_sent_twice(rep: Client, sandbox: Any) -> None:
    sandbox.fault("replicate_create", status=503, body={"detail": "Service Unavailable", "status": 503})
    text = await refused(rep, "generate_image", {"prompt": "unavailable", "model": "flux-schnell"})
    assert "503" in text and "Nothing was charged" in text
    assert len(routes(sandbox, "replicate_create")) == 1 and sandbox.submission_count() == 0
    sandbox.fault("replicate_create", status=500, after=True)  # created, but the answer says 500
    args = {"prompt": "did it land?", "model": "flux-schnell"}
    text = await refused(rep, "generate_image", args)
    assert "may have been created" in text and "did not submit it again" in text
    assert len(routes(sandbox, "replicate_create")) == 2 and sandbox.submission_count() == 1
    text = await refused(rep, "generate_image", args)
    assert "answer was lost" in text and len(routes(sandbox, "replicate_create")) == 2


async def test_expired_output_url_is_a_clear_failure(rep: Client, project: Path, sandbox: Any) -> None:
    sandbox.expire_outputs(404)
    text = await refused(rep, "generate_image", {"prompt": "gone in an hour", "model": "flux-schnell"})
    assert "expired" in text and "/replicate/delivery/" in text
    assert partials(project) == [] and not list(project.glob("image/generated/*"))


async def test_inputs_go_through_the_files_api(rep: Client, project: Path, sandbox: Any) -> None:
    png(project / "image/frames/base.png")
    job = await ok(rep, "edit_image", {"image": "image/frames/base.png", "operation": "restyle", "model": "flux-dev",
                                       "prompt": "as a watercolour", "strength": 0.6})
    assert job["provider"] == "replicate" and (project / job["files"][0]["path"]).is_file()
    payload = sandbox.submissions[-1].payload
    assert payload["image"].startswith(f"{sandbox.replicate_url}/v1/files/") and payload["prompt_strength"] == 0.6
    upload = routes(sandbox, "replicate_files")[-1]
    assert upload.method == "POST" and upload.headers["content-type"].startswith("multipart/form-data")
    delivery = routes(sandbox, "replicate_delivery")
    assert delivery and not any("authorization" in r.headers for r in delivery)  # the token stays on the API host


async def test_a_prediction_made_elsewhere_is_adopted(rep: Client, project: Path, sandbox: Any) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{sandbox.replicate_url}/v1/models/black-forest-labs/flux-schnell/predictions",
                            json={"input": {"prompt": "made elsewhere"}}, headers={"Authorization": "Bearer other"})
    pid = r.json()["id"]
    st = await ok(rep, "queue_status", {"model": "black-forest-labs/flux-schnell", "request_id": pid, "wait_s": 10})
    assert st["job"]["provider"] == "replicate" and st["job"]["status"] == "completed"
    assert (project / st["job"]["files"][0]["path"]).is_file() and sandbox.submission_count() == 1


async def test_restart_resumes_without_a_second_create(project: Path, sandbox: Any) -> None:
    settings = settings_for(project, sandbox)
    async with Client(build_server(settings)) as c:
        first = await ok(c, "generate_image", {"prompt": "outlives the server [sandbox:slow=1.5]",
                                              "model": "flux-schnell", "wait_s": 0.2})
        with anyio.fail_after(10):
            while (await ok(c, "queue_status", {"job_id": first["job_id"]}))["job"]["request_id"] is None:
                await anyio.sleep(0.05)
    async with Client(build_server(settings)) as c:
        done = await ok(c, "queue_status", {"job_id": first["job_id"], "wait_s": 20})
    assert done["job"]["status"] == "completed" and (project / done["job"]["files"][0]["path"]).is_file()
    assert len(routes(sandbox, "replicate_create")) == 1 and sandbox.submission_count() == 1


async def test_provider_choice_by_key_by_call_and_by_setting(project: Path, sandbox: Any) -> None:
    async with Client(build_server(make_settings(project, sandbox))) as c:  # only a FAL key
        assert (await ok(c, "generate_image", {"prompt": "fal only", "model": "flux-schnell"}))["provider"] == "fal"
    both = make_settings(project, sandbox, keys={"replicate": TOKEN})
    async with Client(build_server(both)) as c:
        assert (await ok(c, "generate_image", {"prompt": "both keys", "model": "flux-schnell"}))["provider"] == "fal"
        job = await ok(c, "generate_image", {"prompt": "asked", "model": "flux-schnell", "provider": "replicate"})
        assert job["provider"] == "replicate"
    async with Client(build_server(replace(both, providers=("replicate", "fal")))) as c:
        assert (await ok(c, "generate_image", {"prompt": "preferred", "model": "flux-dev"}))["provider"] == "replicate"
    async with Client(build_server(make_settings(project, sandbox, keys={"fal": None}))) as c:
        text = await refused(c, "generate_image", {"prompt": "no key", "model": "flux-1.1-pro"})
        assert "REPLICATE_API_TOKEN is not set" in text


async def test_token_never_in_results_records_ledger_or_logs(project: Path, sandbox: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    png(project / "image/ref.png")
    texts: list[str] = []
    async with Client(build_server(settings_for(project, sandbox))) as c:
        for tool, args in (("generate_image", {"prompt": "scan", "model": "flux-schnell"}),
                           ("edit_image", {"image": "image/ref.png", "operation": "restyle", "model": "flux-dev",
                                           "prompt": "scan"}),
                           ("generate_image", {"prompt": "[sandbox:unsafe] scan", "model": "flux-schnell"})):
            r = await c.call_tool(tool, args)
            texts += [json.dumps([x.model_dump(mode="json") for x in r.content]), json.dumps(r.structured_content)]
        texts.append(json.dumps((await c.call_tool("queue_status", {})).structured_content))
    haystack = "\n".join(texts) + all_text(project) + caplog.text
    assert TOKEN not in haystack and KEY_SECRET not in haystack
    for rec in sandbox.requests:
        if TOKEN in rec.headers.get("authorization", ""):
            assert rec.route in ("replicate_create", "replicate_get", "replicate_cancel", "replicate_files"), rec.route


async def test_sandbox_wire_checks(sandbox: Any) -> None:
    base = f"{sandbox.replicate_url}/v1"
    create = f"{base}/models/black-forest-labs/flux-schnell/predictions"
    auth = {"Authorization": f"Token {TOKEN}"}  # the older scheme is accepted too
    async with httpx.AsyncClient() as http:
        r = await http.post(create, json={"input": {"prompt": "x"}})
        assert r.status_code == 401 and r.json()["title"] == "Unauthenticated"
        r = await http.post(create, json={"input": {"prompt": "x"}}, headers={**auth, "Prefer": "wait=99"})
        assert r.status_code == 400
        r = await http.post(create, json={"input": {"prompt": "quick"}}, headers={**auth, "Prefer": "wait"})
        done = r.json()
        assert r.status_code == 201 and r.headers["ratelimit-remaining"] and done["status"] == "succeeded"
        assert done["metrics"]["predict_time"] > 0 and done["completed_at"]
        r = await http.post(f"{base}/predictions/{done['id']}/cancel", headers=auth)  # too late: unchanged
        assert r.status_code == 200 and r.json()["status"] == "succeeded"
        listed = (await http.get(f"{base}/predictions", headers=auth)).json()["results"]
        assert listed[0]["id"] == done["id"]
        assert (await http.get(f"{base}/predictions/nope", headers=auth)).status_code == 404
        up = (await http.post(f"{base}/files", files={"content": ("a.txt", b"hello", "text/plain")}, headers=auth)).json()
        assert (await http.get(up["urls"]["get"], headers=auth)).json()["size"] == 5
        assert (await http.delete(up["urls"]["get"], headers=auth)).status_code == 204
        assert (await http.get(up["urls"]["get"], headers=auth)).status_code == 404
        sandbox.configure(output_ttl_s=0.0)  # every output is past its lifetime: links die, data is removed
        gone = (await http.get(f"{base}/predictions/{done['id']}", headers=auth)).json()
        assert gone["data_removed"] is True and gone["output"] is None
        assert (await http.get(done["output"][0])).status_code == 404
    assert sandbox.submission_count(provider="replicate") == 1


# ---------------------------------------------------------------- wire details (httpx.MockTransport)


def provider(handler: Any, tmp_path: Path, **overrides: Any) -> tuple[ReplicateProvider, httpx.AsyncClient]:
    s = make_settings(tmp_path, env={"AIVP_REPLICATE_URL": API}, keys={"fal": None, "replicate": TOKEN},
                      **{"retry_base_s": 0.001, "retry_cap_s": 0.5, "poll_initial_s": 0.001, "poll_max_s": 0.01,
                         **overrides})
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ReplicateProvider(s, client), client


def pred(pid: str = "p1", status: str = "starting", **extra: Any) -> dict[str, Any]:
    return {"id": pid, "status": status, "output": None, "logs": "", "error": None,
            "urls": {"get": f"{API}/v1/predictions/{pid}", "cancel": f"{API}/v1/predictions/{pid}/cancel"}, **extra}


def test_status_vocabulary_logs_and_codes() -> None:
    assert parse_status({"status": "starting"}) == Queued()
    assert parse_status({"status": "processing", "logs": "Using seed: 4\n 10%|#  | 1/9\r 50%|### | 5/9\n"}) == \
        Running(("Using seed: 4", "50%|### | 5/9"))
    failed = parse_status({"status": "failed", "error": "Prediction interrupted; please retry (code: PA)"})
    assert isinstance(failed, Completed) and failed.error_type == "PA"
    assert parse_status({"status": "aborted"}) == Canceled() == parse_status({"status": "canceled"})
    with pytest.raises(ProviderError, match="unknown prediction status"):
        parse_status({"status": "queued"})
    assert error_code("flagged as sensitive. (E005)") == "E005" and log_lines(None) == []


def test_problem_json_messages() -> None:
    r = httpx.Response(422, json={"title": "Input validation failed", "status": 422, "detail": "- input.x: bad\n",
                                  "invalid_fields": [{"type": "enum", "field": "input.output_format",
                                                      "description": "output_format must be one of \"jpg\", \"png\""}]})
    assert describe(r) == 'output_format: output_format must be one of "jpg", "png"'
    assert describe(httpx.Response(401, json={"title": "Unauthenticated", "detail": "You did not pass a valid token",
                                              "status": 401})) == "You did not pass a valid token"
    assert describe(httpx.Response(502, text="<html>bad gateway</html>")) == "<html>bad gateway</html>"


async def test_create_paths_bodies_and_headers(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=pred("p1", "succeeded", output=["https://replicate.delivery/a/out-0.webp"]))

    rp, client = provider(handler, tmp_path)
    async with client:
        handle = await rp.submit("black-forest-labs/flux-schnell", {"prompt": "x"}, shape="images")  # an image model
        await rp.submit(f"someone/model:{HEX}", {"prompt": "y"})
        await rp.submit(HEX, {"prompt": "z"})
        with pytest.raises(ProviderError, match="not a Replicate model"):
            await rp.submit("no-slash", {})
    assert seen[0].url.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert json.loads(seen[0].content) == {"input": {"prompt": "x"}}
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}" and seen[0].headers["prefer"] == "wait=1"
    assert seen[1].url.path == "/v1/predictions" and json.loads(seen[1].content) == {"version": HEX, "input": {"prompt": "y"}}
    assert "prefer" not in seen[1].headers  # an unknown (version) endpoint is not assumed to be quick
    assert json.loads(seen[2].content)["version"] == HEX
    assert handle.data["prediction"]["status"] == "succeeded"
    states = [s async for s in rp.watch(handle)]
    assert states == [Completed()]
    result = await rp.result(handle)
    assert [f.url for f in rp.outputs("images", result.output)] == ["https://replicate.delivery/a/out-0.webp"]


async def test_foreign_urls_are_rebuilt_and_a_starting_answer_is_polled(tmp_path: Path) -> None:
    answers = [pred("p2", "processing", logs="step 1"), pred("p2", "processing", logs="step 1\nstep 2"),
               pred("p2", "succeeded", output="https://replicate.delivery/b/out.png", logs="Using seed: 77")]
    gets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = pred("p2", "starting")
            body["urls"] = {"get": "https://evil.test/steal", "cancel": "https://evil.test/c"}
            return httpx.Response(201, json=body)
        gets.append(str(request.url))
        return httpx.Response(200, json=answers.pop(0))

    rp, client = provider(handler, tmp_path)
    async with client:
        handle = await rp.submit("black-forest-labs/flux-dev", {"prompt": "x"})
        assert handle.urls["get"] == f"{API}/v1/predictions/p2" and handle.data == {}
        states = [s async for s in rp.watch(handle)]
        assert states == [Running(("step 1",)), Running(("step 1", "step 2")), Completed(("Using seed: 77",))]
        answers.append(pred("p2", "succeeded", output="https://replicate.delivery/b/out.png", logs="Using seed: 77"))
        result = await rp.result(handle)
    assert all(u.startswith(API) for u in gets) and result.output["seed"] == 77
    assert [f.url for f in rp.outputs("image", result.output)] == ["https://replicate.delivery/b/out.png"]


async def test_create_is_repeated_only_when_throttled(tmp_path: Path) -> None:
    calls: list[int] = []
    answers = [httpx.Response(429, headers={"Retry-After": "0"}, json={"detail": "throttled"}),
               httpx.Response(201, json=pred())]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return answers.pop(0)

    rp, client = provider(handler, tmp_path)
    async with client:
        await rp.submit("black-forest-labs/flux-dev", {"prompt": "x"})
    assert len(calls) == 2

    for status, error in ((503, ProviderHTTPError), (500, SubmitUncertain), (504, SubmitUncertain)):
        calls.clear()

        def five(request: httpx.Request, status: int = status) -> httpx.Response:
            calls.append(1)
            return httpx.Response(status, json={"detail": "boom", "status": status})

        rp, client = provider(five, tmp_path)
        async with client:
            with pytest.raises(error):
                await rp.submit("black-forest-labs/flux-dev", {"prompt": "x"})
        assert len(calls) == 1, status

    def timeout(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("no answer", request=request)

    calls.clear()
    rp, client = provider(timeout, tmp_path)
    async with client:
        with pytest.raises(SubmitUncertain, match="did not send it again"):
            await rp.submit("black-forest-labs/flux-dev", {"prompt": "x"})
    assert len(calls) == 1

    def long_wait(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "900"}, json={"detail": "throttled"})

    rp, client = provider(long_wait, tmp_path)
    async with client:
        with pytest.raises(ProviderHTTPError, match="wait 900 s"):
            await rp.submit("black-forest-labs/flux-dev", {"prompt": "x"})


async def test_reads_retry_429_and_5xx(tmp_path: Path) -> None:
    answers = [httpx.Response(429, json={"detail": "throttled"}), httpx.Response(503, text="busy"),
               httpx.Response(200, json=pred("p3", "succeeded", output=["https://d/x.webp"]))]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    rp, client = provider(handler, tmp_path)
    async with client:
        result = await rp.result(rp.handle_for("black-forest-labs/flux-dev", "p3"))
    assert result.output["output"] == ["https://d/x.webp"] and answers == []


async def test_failures_removed_outputs_cancel_and_upload(tmp_path: Path) -> None:
    h = Handle("replicate", "black-forest-labs/flux-dev", "p4",
               {"get": f"{API}/v1/predictions/p4", "cancel": f"{API}/v1/predictions/p4/cancel"})
    rp, _ = provider(lambda r: httpx.Response(500), tmp_path)
    cases = [("The input or output was flagged as sensitive. Please try again with different inputs. (E005)", SafetyRefusal),
             ("Prediction interrupted; please retry (code: PA)", JobFailed),
             ("Director: unexpected error handling prediction (E9828)", JobFailed)]
    for message, error in cases:
        failed = replace(h, data={"prediction": pred("p4", "failed", error=message)})
        with pytest.raises(error) as info:
            await rp.result(failed)
        assert type(info.value) is error and info.value.error_type
    removed = replace(h, data={"prediction": pred("p4", "succeeded", data_removed=True)})
    with pytest.raises(OutputLost, match="one hour"):
        await rp.result(removed)

    posted: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        if request.url.path.endswith("/cancel"):
            return httpx.Response(200, json=pred("p4", "succeeded" if len(posted) > 1 else "canceled"))
        return httpx.Response(201, json={"id": "f1", "urls": {"get": f"{API}/v1/files/f1"}})

    rp, client = provider(handler, tmp_path)
    img = png(tmp_path / "ref.png")
    async with client:
        assert await rp.cancel(h) is True
        assert await rp.cancel(h) is False  # already finished: nothing was cancelled
        assert await rp.upload(img, "image/png") == f"{API}/v1/files/f1"
    upload = posted[-1]
    assert upload.url.path == "/v1/files" and b'name="content"; filename="ref.png"' in upload.read()


def test_outputs_of_every_shape(tmp_path: Path) -> None:
    rp, _ = provider(lambda r: httpx.Response(500), tmp_path)
    shapes = {"https://d/one.png": 1, "data:image/png;base64,AAAA": 1, "not a url": 0,
              ("https://d/a.webp", "https://d/b.webp"): 2}
    for raw, n in shapes.items():
        value = list(raw) if isinstance(raw, tuple) else raw
        assert len(rp.outputs("images", {"output": value})) == n, raw
    assert [f.url for f in rp.outputs("image", {"output": {"url": "https://d/obj.png"}})] == ["https://d/obj.png"]
    assert [f.url for f in rp.outputs("images", {"output": {"images": [{"url": "https://d/1.png"}, "https://d/2.png"]}})] \
        == ["https://d/1.png", "https://d/2.png"]
    video = rp.outputs("video", {"output": "https://d/clip.mp4"})
    assert video[0].kind == "video" and rp.outputs("images", {"output": None}) == []
