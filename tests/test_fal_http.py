"""The fal client against httpx.MockTransport: URL rules, retry policy, error bodies, storage flows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from aivp.errors import ProviderError, ProviderHTTPError, ProviderUnavailable, SubmitUncertain
from aivp.providers.base import Completed, Queued, Running
from aivp.providers.fal import FalProvider, app_path, describe, parse_status

from .conftest import KEY, KEY_SECRET, make_settings

Q = "https://queue.test"


def provider(handler: Any, tmp_path: Path, **overrides: Any) -> tuple[FalProvider, httpx.AsyncClient]:
    s = make_settings(tmp_path, env={"AIVP_FAL_QUEUE_URL": Q, "AIVP_FAL_REST_URL": "https://rest.test",
                                     "AIVP_FAL_CDN_URL": "https://cdn.test"},
                      **{"retry_base_s": 0.001, "retry_cap_s": 0.5, **overrides})
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return FalProvider(s, client), client


def test_sub_path_rule() -> None:
    assert app_path("fal-ai/kling-video/o3/pro/text-to-video") == "fal-ai/kling-video"
    assert app_path("workflows/me/flow/sub/path") == "workflows/me/flow"
    assert app_path("1234-my-app") == "1234/my-app"
    with pytest.raises(ProviderError):
        app_path("nonsense")


def test_parse_status_vocabulary() -> None:
    assert parse_status({"status": "IN_QUEUE", "queue_position": 2}) == Queued(2)
    assert parse_status({"status": "IN_PROGRESS", "logs": [{"message": "step 1"}]}) == Running(("step 1",))
    done = parse_status({"status": "COMPLETED", "logs": None, "error": "boom", "error_type": "request_timeout"})
    assert isinstance(done, Completed) and done.error_type == "request_timeout"
    with pytest.raises(ProviderError, match="unknown job status"):
        parse_status({"status": "FAILED"})


def test_describe_detail_string_list_and_safety() -> None:
    r = httpx.Response(504, json={"detail": "Request timed out", "error_type": "request_timeout"})
    assert describe(r) == ("Request timed out", "request_timeout", False)
    r = httpx.Response(422, json={"detail": [{"loc": ["body", "duration"], "msg": "Input should be '5' or '10'",
                                              "type": "one_of"}]})
    msg, kind, safety = describe(r)
    assert msg == "duration: Input should be '5' or '10' (one_of)" and kind == "one_of" and not safety
    r = httpx.Response(422, json={"detail": [{"loc": ["body", "prompt"], "msg": "flagged", "type": "content_policy_violation",
                                              "input": "the prompt"}]})
    msg, _, safety = describe(r)
    assert safety and "the prompt" not in msg
    r = httpx.Response(502, text="<html>nginx bad gateway</html>", headers={"X-Fal-Error-Type": "runner_incomplete_response"})
    assert describe(r)[1] == "runner_incomplete_response"


def _submit_ok(request: httpx.Request) -> httpx.Response:
    rid = "req-1"
    base = f"{Q}/fal-ai/kling-video/requests/{rid}"
    return httpx.Response(200, json={"request_id": rid, "status_url": f"{base}/status", "response_url": base,
                                     "cancel_url": f"{base}/cancel", "status": "IN_QUEUE", "queue_position": 0})


@pytest.mark.anyio
async def test_submit_retries_429_with_retry_after_and_ingress_503(tmp_path: Path) -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "0"}, json={"detail": "slow down"}),
               httpx.Response(503, text="<html><center>nginx</center></html>")]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0) if answers else _submit_ok(request)

    fal, client = provider(handler, tmp_path)
    async with client:
        handle = await fal.submit("fal-ai/kling-video/o3/pro/text-to-video", {"prompt": "x"})
    assert len(seen) == 3 and handle.request_id == "req-1"
    assert seen[0].url.path == "/fal-ai/kling-video/o3/pro/text-to-video"
    assert seen[0].headers["authorization"] == f"Key {KEY}"
    assert handle.urls["status"] == f"{Q}/fal-ai/kling-video/requests/req-1/status"
    assert handle.urls["stream"] == f"{Q}/fal-ai/kling-video/requests/req-1/status/stream"


@pytest.mark.anyio
async def test_submit_not_retried_when_it_may_have_landed(tmp_path: Path) -> None:
    calls = []

    def from_fal(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, headers={"x-fal-request-id": "abc"}, json={"detail": "runner busy"})

    fal, client = provider(from_fal, tmp_path)
    async with client:
        with pytest.raises(SubmitUncertain, match="HTTP 503"):
            await fal.submit("fal-ai/flux/dev", {"prompt": "x"})
    assert len(calls) == 1  # a 503 from fal itself (with a request id) is not blindly repeated: it may be queued

    calls.clear()

    def read_timeout(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("no answer", request=request)

    fal, client = provider(read_timeout, tmp_path)
    async with client:
        with pytest.raises(SubmitUncertain, match="did not send it again"):
            await fal.submit("fal-ai/flux/dev", {"prompt": "x"})
    assert len(calls) == 1


@pytest.mark.anyio
async def test_connect_errors_are_retried_then_reported(tmp_path: Path) -> None:
    calls = []

    def refused(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    fal, client = provider(refused, tmp_path, retry_attempts=3)
    async with client:
        with pytest.raises(ProviderUnavailable, match="after 3 attempts"):
            await fal.submit("fal-ai/flux/dev", {"prompt": "x"})
    assert len(calls) == 3


@pytest.mark.anyio
async def test_foreign_urls_from_the_server_are_not_trusted(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"request_id": "r9", "status_url": "https://evil.test/steal",
                                         "response_url": "https://evil.test/r", "cancel_url": "https://evil.test/c"})

    fal, client = provider(handler, tmp_path)
    async with client:
        handle = await fal.submit("fal-ai/flux/dev", {"prompt": "x"})
    assert all(u.startswith(Q) for u in handle.urls.values())


@pytest.mark.anyio
async def test_long_retry_after_is_reported_not_slept(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"}, json={"detail": "throttled"})

    fal, client = provider(handler, tmp_path)
    async with client:
        with pytest.raises(ProviderHTTPError, match="wait 3600 s"):
            await fal.submit("fal-ai/flux/dev", {"prompt": "x"})


@pytest.mark.anyio
async def test_storage_single_multipart_and_signed_fallback(tmp_path: Path) -> None:
    small = tmp_path / "small.png"
    small.write_bytes(b"\x89PNG" + b"a" * 100)
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"b" * 2500)
    log: list[tuple[str, str, str | None, bytes]] = []
    fail_cdn = {"on": False}

    def handler(request: httpx.Request) -> httpx.Response:
        log.append((request.method, str(request.url), request.headers.get("authorization"), request.read()))
        path = request.url.path
        if path == "/storage/auth/token":
            return httpx.Response(200, json={"token": "cdn-tok", "token_type": "Bearer", "base_url": "https://cdnb.test",
                                             "expires_at": "2999-01-01T00:00:00+00:00"})
        if path == "/files/upload":
            if fail_cdn["on"]:
                return httpx.Response(500, text="boom")
            return httpx.Response(200, json={"access_url": "https://cdn.test/files/x/small.png"})
        if path == "/files/upload/multipart":
            return httpx.Response(200, json={"access_url": "https://cdnb.test/files/y/big.png", "uploadId": "u1"})
        if "/multipart/u1/" in path and request.method == "PUT":
            return httpx.Response(200, headers={"ETag": f'"e{path.rsplit("/", 1)[1]}"'})
        if path.endswith("/complete"):
            return httpx.Response(200, json={})
        if path == "/storage/upload/initiate":
            return httpx.Response(200, json={"upload_url": "https://signed.test/put?sig=1", "file_url": "https://files.test/s.png"})
        if request.url.host == "signed.test":
            return httpx.Response(200)
        return httpx.Response(404)

    fal, client = provider(handler, tmp_path, multipart_threshold=1000, part_size=1000)
    async with client:
        assert await fal.upload(small, "image/png") == "https://cdn.test/files/x/small.png"
        assert await fal.upload(big, "image/png") == "https://cdnb.test/files/y/big.png"
        fail_cdn["on"] = True
        assert await fal.upload(small, "image/png") == "https://files.test/s.png"

    cdn_calls = [e for e in log if httpx.URL(e[1]).host in ("cdn.test", "cdnb.test")]
    assert cdn_calls and all(auth == "Bearer cdn-tok" for _, _, auth, _ in cdn_calls)
    parts = [e for e in log if "/multipart/u1/" in e[1] and e[0] == "PUT"]
    assert [len(body) for *_, body in parts] == [1000, 1000, 504]
    complete = next(e for e in log if e[1].endswith("/complete"))
    assert json.loads(complete[3])["parts"] == [{"partNumber": 1, "etag": '"e1"'}, {"partNumber": 2, "etag": '"e2"'},
                                                {"partNumber": 3, "etag": '"e3"'}]
    signed = [e for e in log if "signed.test" in e[1]]
    assert signed and signed[0][2] is None and signed[0][3] == small.read_bytes()
    assert sum(1 for e in log if e[1].endswith("/storage/auth/token?storage_type=fal-cdn-v3")) == 1  # token cached
    assert all(KEY_SECRET not in (auth or "") for m, url, auth, _ in log if "rest.test" not in url)
