"""The sandbox's fal queue: lifecycle, sub-path rule, SSE, validation, cancel, faults, control API.

Plain httpx against a real Sandbox on 127.0.0.1 (one per module, reset before each test).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from aivp.sandbox import Sandbox

KEY = {"Authorization": "Key test-key"}
NBP = "fal-ai/nano-banana-pro"
NBP_EDIT = "fal-ai/nano-banana-pro/edit"
T2V = "fal-ai/bytedance/seedance/v1.5/pro/text-to-video"
I2V = "fal-ai/bytedance/seedance/v1.5/pro/image-to-video"


@pytest.fixture(scope="module")
def sb():
    with Sandbox(queue_s=0.05, image_s=0.1, video_s=0.2) as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(sb):
    sb.reset()
    yield
    sb.reset()


@pytest.fixture(scope="module")
def client():
    with httpx.Client(headers=KEY, timeout=10) as c:
        yield c


@pytest.fixture
def anyio_backend():
    return "asyncio"


def submit(client: httpx.Client, sb: Sandbox, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"{sb.fal_queue_url}/{endpoint}", json=payload)
    assert r.status_code == 200, r.text
    return r.json()


def wait(client: httpx.Client, job: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(job["status_url"]).json()
        if body["status"] == "COMPLETED":
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job['request_id']} did not complete")


# -- lifecycle -------------------------------------------------------------------------------


def test_submit_answer_and_polling_lifecycle(sb, client):
    sb.configure(queue_s=0.3, image_s=0.3)
    r = client.post(f"{sb.fal_queue_url}/{NBP}", json={"prompt": "a lighthouse", "num_images": 2},
                    headers={"X-Fal-Queue-Priority": "low"}, params={"fal_webhook": "http://127.0.0.1:9/hook"})
    assert r.status_code == 200
    job = r.json()
    rid = job["request_id"]
    assert r.headers["x-fal-request-id"] == rid
    assert job["status"] == "IN_QUEUE" and job["logs"] is None and job["metrics"] == {}
    assert job["queue_position"] == 2
    base = f"{sb.fal_queue_url}/fal-ai/nano-banana-pro/requests/{rid}"
    assert (job["response_url"], job["status_url"], job["cancel_url"]) == (base, f"{base}/status", f"{base}/cancel")

    seen, positions, codes = [], [], set()
    while True:
        s = client.get(job["status_url"])
        body = s.json()
        assert body["status"] in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
        assert "logs" in body and body["logs"] is None
        codes.add((body["status"], s.status_code))
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] == "IN_QUEUE":
            positions.append(body["queue_position"])
        if body["status"] == "COMPLETED":
            break
        time.sleep(0.02)
    assert seen == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert positions == sorted(positions, reverse=True) and positions[-1] == 0 and max(positions) == 2
    assert codes == {("IN_QUEUE", 202), ("IN_PROGRESS", 202), ("COMPLETED", 200)}
    assert body["metrics"]["inference_time"] >= 0.3 and "error" not in body

    res = client.get(job["response_url"])
    assert res.status_code == 200 and res.headers["x-fal-request-id"] == rid
    out = res.json()
    assert len(out["images"]) == 2 and isinstance(out["seed"], int)
    assert out["images"][0]["url"].startswith(sb.fal_cdn_url + "/files/")
    (s,) = sb.submissions
    assert (s.endpoint, s.request_id, s.payload["prompt"]) == (NBP, rid, "a lighthouse")
    assert s.headers["x-fal-queue-priority"] == "low" and s.query["fal_webhook"] == "http://127.0.0.1:9/hook"


def test_result_before_completion_is_400(sb, client):
    job = submit(client, sb, NBP, {"prompt": "x [sandbox:stuck]"})
    r = client.get(job["response_url"])
    assert r.status_code == 400 and r.json() == {"detail": "Request is still in progress"}
    client.put(job["cancel_url"])


@pytest.mark.parametrize("flag,expect", [("1", True), ("true", True), ("0", False), ("false", False)])
def test_logs_flag(sb, client, flag, expect):
    job = submit(client, sb, NBP, {"prompt": "logs"})
    wait(client, job)
    logs = client.get(job["status_url"], params={"logs": flag}).json()["logs"]
    if expect:
        assert logs and {"message", "level", "source", "timestamp", "labels"} <= set(logs[0])
    else:
        assert logs is None


def test_sub_path_rule_namespaces_and_trailing_slash(sb, client):
    job = submit(client, sb, T2V, {"prompt": "p [sandbox:bytes=64]", "duration": "4"})  # no render: quick
    rid = job["request_id"]
    assert job["status_url"] == f"{sb.fal_queue_url}/fal-ai/bytedance/requests/{rid}/status"
    wrong = f"{sb.fal_queue_url}/{T2V}/requests/{rid}/status"
    assert client.get(wrong).status_code == 405
    wait(client, job)
    assert client.get(job["status_url"] + "/").status_code == 200
    assert client.get(job["response_url"] + "/").json()["video"]["content_type"] == "video/mp4"
    wf = submit(client, sb, "workflows/me/my-flow/sub/path", {"prompt": "w"})
    assert wf["status_url"].startswith(f"{sb.fal_queue_url}/workflows/me/my-flow/requests/")
    legacy = submit(client, sb, "1234-my-app", {"prompt": "l"})
    assert legacy["status_url"].startswith(f"{sb.fal_queue_url}/1234/my-app/requests/")
    assert client.get(f"{sb.fal_queue_url}/fal-ai/other/requests/{rid}/status").status_code == 404
    assert [s.endpoint for s in sb.submissions] == [T2V, "workflows/me/my-flow/sub/path", "1234/my-app"]


def test_unknown_endpoint_gets_generic_images(sb, client):
    job = submit(client, sb, "someone/raw-model/v2", {"prompt": "anything", "whatever": [1, 2]})
    assert wait(client, job).get("error") is None
    out = client.get(job["response_url"]).json()
    assert out["images"][0]["content_type"] == "image/png"


# -- SSE -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sse_stream_lifecycle(sb):
    sb.configure(queue_s=0.2, image_s=0.3)
    async with httpx.AsyncClient(headers=KEY, timeout=10) as c:
        job = (await c.post(f"{sb.fal_queue_url}/{NBP}", json={"prompt": "stream"})).json()
        events = []
        async with aconnect_sse(c, "GET", job["status_url"] + "/stream", params={"logs": "1"}) as es:
            assert es.response.headers["content-type"].startswith("text/event-stream")
            async for ev in es.aiter_sse():
                events.append(json.loads(ev.data))
    statuses = [e["status"] for e in events]
    assert statuses[0] == "IN_QUEUE" and statuses[-1] == "COMPLETED" and "IN_PROGRESS" in statuses
    assert statuses.count("COMPLETED") == 1  # the stream closes after it
    assert [e["queue_position"] for e in events if e["status"] == "IN_QUEUE"][-1] == 0
    assert len(events[-1]["logs"]) >= len(events[-2]["logs"]) > 0
    assert events[-1]["metrics"]["inference_time"] > 0 and events[-1]["request_id"] == job["request_id"]


def test_sse_pings_while_nothing_changes(sb, client):
    sb.stick_queue(True)
    job = submit(client, sb, NBP, {"prompt": "ping"})
    lines = []
    with client.stream("GET", job["status_url"] + "/stream") as r:
        started = time.monotonic()
        for line in r.iter_lines():
            lines.append(line)
            if line == ": ping" or time.monotonic() - started > 3:
                break
    assert lines[0].startswith("data: ") and json.loads(lines[0][6:])["status"] == "IN_QUEUE"
    assert ": ping" in lines
    assert client.put(job["cancel_url"]).status_code == 202


def test_sse_stream_faults(sb, client):
    job = submit(client, sb, NBP, {"prompt": "[sandbox:stuck]"})
    url = job["status_url"] + "/stream"
    sb.fault("stream", action="stall", delay=5)
    with pytest.raises(httpx.ReadTimeout):
        with client.stream("GET", url, timeout=httpx.Timeout(10, read=0.4)) as r:
            assert r.status_code == 200
            next(r.iter_lines())
    sb.fault("stream", action="drop_body")
    lines = []
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("GET", url) as r:
            for line in r.iter_lines():
                lines.append(line)
    assert lines[0].startswith("data: ")
    sb.fault("stream", status=404)
    assert client.get(url).status_code == 404
    sb.fault("stream", status=500)
    assert client.get(url).status_code == 500
    client.put(job["cancel_url"])


# -- auth ------------------------------------------------------------------------------------


def test_auth(sb):
    url = f"{sb.fal_queue_url}/{NBP}"
    assert httpx.post(url, json={"prompt": "x"}).status_code == 401
    r = httpx.post(url, json={"prompt": "x"}, headers={"Authorization": "Bearer abc"})
    assert r.status_code == 401 and "detail" in r.json()
    with Sandbox(keys={"good"}) as locked:
        url = f"{locked.fal_queue_url}/{NBP}"
        assert httpx.post(url, json={"prompt": "x"}, headers={"Authorization": "Key bad"}).status_code == 401
        assert httpx.post(url, json={"prompt": "x"}, headers={"Authorization": "Key good"}).status_code == 200
        assert locked.submission_count() == 1
    assert sb.submission_count() == 0


def test_locked_account(sb, client):
    sb.fault("submit", preset="locked")
    r = client.post(f"{sb.fal_queue_url}/{NBP}", json={"prompt": "x"})
    assert r.status_code == 403 and r.json()["detail"].startswith("User is locked. Reason: Exhausted balance.")
    assert sb.submission_count() == 0


# -- failures --------------------------------------------------------------------------------


def _fail(client, sb, endpoint, payload):
    job = submit(client, sb, endpoint, payload)
    status = wait(client, job)
    assert status["status"] == "COMPLETED" and "error_type" in status
    return status, client.get(job["response_url"])


def test_validation_is_lazy_and_catalog_driven(sb, client):
    status, r = _fail(client, sb, T2V, {"prompt": "p", "duration": "99", "unknown_field": True})
    assert r.status_code == 422 and r.headers["x-fal-billable-units"] == "0"
    (e,) = r.json()["detail"]
    assert e["loc"] == ["body", "duration"] and e["type"] == "literal_error" and e["input"] == "99"
    assert "'12'" in e["msg"] and "expected" in e["ctx"]
    assert status["error_type"] == "literal_error"

    _, r = _fail(client, sb, T2V, {"prompt": "p", "duration": 5})  # string enums take strings only
    assert r.json()["detail"][0]["loc"] == ["body", "duration"]
    _, r = _fail(client, sb, T2V, {"duration": "5"})
    assert r.json()["detail"] == [{"type": "missing", "loc": ["body", "prompt"], "msg": "Field required"}]
    _, r = _fail(client, sb, NBP, {"prompt": "p", "num_images": 9})
    e = r.json()["detail"][0]
    assert (e["type"], e["ctx"]) == ("less_than_equal", {"le": 4})
    _, r = _fail(client, sb, NBP_EDIT, {"prompt": "p", "image_urls": ["data:,x"] * 5})
    e = r.json()["detail"][0]
    assert e["type"] == "too_long" and e["ctx"]["max_length"] == 4


def test_safety_refusal(sb, client):
    status, r = _fail(client, sb, NBP, {"prompt": "something [sandbox:unsafe]"})
    assert r.status_code == 422 and r.headers["x-fal-billable-units"] == "0"
    (e,) = r.json()["detail"]
    assert e["type"] == "content_policy_violation" and e["loc"] == ["body", "prompt"]
    assert e["url"].endswith("#content_policy_violation")
    assert status["error_type"] == "content_policy_violation"


def test_unfetchable_input_is_a_download_error(sb, client):
    _, r = _fail(client, sb, I2V, {"prompt": "p", "image_url": "https://example.com/frame.png"})
    (e,) = r.json()["detail"]
    assert (r.status_code, e["type"], e["loc"]) == (422, "file_download_error", ["body", "image_url"])


def test_error_directives(sb, client):
    status, r = _fail(client, sb, NBP, {"prompt": "[sandbox:error=500]"})
    assert (r.status_code, r.json()) == (500, {"detail": "Internal Server Error"})
    status, r = _fail(client, sb, NBP, {"prompt": "[sandbox:error=504]"})
    assert r.status_code == 504 and r.json() == {"detail": "Request timed out", "error_type": "request_timeout"}
    assert r.headers["x-fal-error-type"] == "request_timeout" and status["error_type"] == "request_timeout"


# -- cancel and the queue ----------------------------------------------------------------------


def test_cancel_in_each_state(sb, client):
    queued = submit(client, sb, NBP, {"prompt": "[sandbox:stuck]"})
    r = client.put(queued["cancel_url"])
    assert (r.status_code, r.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    assert wait(client, queued)["error_type"] == "client_cancelled"
    r = client.get(queued["response_url"])
    assert r.status_code == 499 and r.json() == {"detail": "Request cancelled", "error_type": "client_cancelled"}
    assert client.put(queued["cancel_url"]).json() == {"status": "ALREADY_COMPLETED"}

    running = submit(client, sb, NBP, {"prompt": "[sandbox:slow=10]"})
    while client.get(running["status_url"]).json()["status"] != "IN_PROGRESS":
        time.sleep(0.02)
    assert client.put(running["cancel_url"]).status_code == 202
    assert wait(client, running, timeout=5)["error_type"] == "client_cancelled"  # not the 10 s it would run

    done = submit(client, sb, NBP, {"prompt": "done"})
    wait(client, done)
    r = client.put(done["cancel_url"])
    assert (r.status_code, r.json()) == (400, {"status": "ALREADY_COMPLETED"})
    r = client.put(f"{sb.fal_queue_url}/fal-ai/nano-banana-pro/requests/00000000-0000-0000-0000-000000000000/cancel")
    assert (r.status_code, r.json()) == (404, {"status": "NOT_FOUND"})


def test_stuck_queue_and_release(sb, client):
    sb.stick_queue(True)
    job = submit(client, sb, NBP, {"prompt": "wait"})
    time.sleep(0.3)
    body = client.get(job["status_url"]).json()
    assert body["status"] == "IN_QUEUE" and body["queue_position"] == 2
    sb.stick_queue(False)
    assert wait(client, job).get("error") is None


def test_cancel_race_mode_still_completes(sb, client):
    sb.configure(cancel_ignored=True, queue_s=0.2)
    job = submit(client, sb, NBP, {"prompt": "race"})
    assert client.put(job["cancel_url"]).status_code == 202
    assert "error" not in wait(client, job)
    assert client.get(job["response_url"]).status_code == 200


def test_submission_counting(sb, client):
    for endpoint in (NBP, NBP, T2V):
        submit(client, sb, endpoint, {"prompt": "count", "duration": "4"})
    assert sb.submission_count() == 3 and sb.submission_count(NBP) == 2 and sb.submission_count(T2V) == 1
    assert sb.stats()["by_endpoint"] == {NBP: 2, T2V: 1}


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw,status,has_request_id,body_check",
    [
        ({"status": 429, "headers": {"Retry-After": "1"}}, 429, False, lambda r: r.headers["retry-after"] == "1"),
        ({"status": 429}, 429, False, lambda r: "retry-after" not in r.headers),
        ({"preset": "ingress_503"}, 503, False, lambda r: "nginx" in r.text),
        ({"preset": "fal_503"}, 503, True, lambda r: r.json()["error_type"] == "runner_scheduling_failure"),
        ({"preset": "user_timeout_504"}, 504, True, lambda r: r.headers["x-fal-request-timeout-type"] == "user"),
        ({"status": 408}, 408, False, lambda r: r.json()["detail"] == "Request Timeout"),
        ({"status": 409}, 409, False, lambda r: True),
        ({"status": 500}, 500, False, lambda r: True),
    ],
)
def test_respond_faults(sb, client, kw, status, has_request_id, body_check):
    job = submit(client, sb, NBP, {"prompt": "f"})
    sb.fault("status", times=2, **kw)
    for _ in range(2):
        r = client.get(job["status_url"])
        assert r.status_code == status and ("x-fal-request-id" in r.headers) == has_request_id and body_check(r)
    assert client.get(job["status_url"]).status_code in (200, 202)  # consumed after `times`


def test_drop_and_after_faults(sb, client):
    sb.fault("submit", action="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{sb.fal_queue_url}/{NBP}", json={"prompt": "x"})
    assert sb.submission_count() == 0
    # the submit went through, the answer did not: a client must not blindly submit again
    sb.fault("submit", action="drop", after=True)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{sb.fal_queue_url}/{NBP}", json={"prompt": "x"})
    assert sb.submission_count() == 1
    assert [r.route for r in sb.requests] == ["submit", "submit"]


def test_stall_and_malformed_faults(sb, client):
    job = submit(client, sb, NBP, {"prompt": "x"})
    sb.fault("status", action="stall", delay=1)
    with pytest.raises(httpx.ReadTimeout):
        client.get(job["status_url"], timeout=0.3)
    sb.fault("result", action="stall", delay=0.5)
    wait(client, job)
    with pytest.raises(httpx.ReadTimeout):  # the stall holds the answer back
        client.get(job["response_url"], timeout=0.1)
    assert client.get(job["response_url"]).status_code == 200  # the fault was used up
    # a stalled submit that the client gives up on is never processed; with after=True it is
    sb.fault("submit", action="stall", delay=0.3)
    with pytest.raises(httpx.ReadTimeout):
        client.post(f"{sb.fal_queue_url}/{NBP}", json={"prompt": "slow"}, timeout=0.1)
    time.sleep(0.4)
    assert sb.submission_count() == 1
    sb.fault("submit", action="stall", delay=0.3, after=True)
    with pytest.raises(httpx.ReadTimeout):
        client.post(f"{sb.fal_queue_url}/{NBP}", json={"prompt": "slow"}, timeout=0.1)
    assert sb.submission_count() == 2
    sb.fault("status", action="malformed")
    r = client.get(job["status_url"])
    with pytest.raises(json.JSONDecodeError):
        r.json()
    sb.fault("status", status=503, body="", match="/no-such-path/")
    assert client.get(job["status_url"]).status_code == 200  # `match` did not match
    with pytest.raises(ValueError, match="unknown fault route"):
        sb.fault("nope")


def test_faults_apply_before_auth_and_times_none(sb):
    sb.fault("submit", preset="ingress_502", times=None)
    for _ in range(3):
        assert httpx.post(f"{sb.fal_queue_url}/{NBP}", json={}).status_code == 502
    sb.reset()
    assert httpx.post(f"{sb.fal_queue_url}/{NBP}", json={}).status_code == 401


# -- HTTP control API ------------------------------------------------------------------------


def test_http_control_api(sb, client):
    ctl = f"{sb.url}/_sandbox"
    index = httpx.get(f"{ctl}/").json()
    assert index["env"] == sb.env() and "signed_put" in index["fault_routes"] and "locked" in index["fault_presets"]
    armed = httpx.post(f"{ctl}/faults", json=[{"route": "submit", "status": 429}, {"route": "submit", "preset": "locked"}])
    assert armed.status_code == 200 and len(httpx.get(f"{ctl}/faults").json()) == 2
    assert client.post(f"{sb.fal_queue_url}/{NBP}", json={"prompt": "x"}).status_code == 429
    assert client.post(f"{sb.fal_queue_url}/{NBP}", json={"prompt": "x"}).status_code == 403
    assert httpx.post(f"{ctl}/faults", json={"route": "nope"}).status_code == 400
    assert httpx.post(f"{ctl}/config", json={"bogus": 1}).status_code == 400
    assert httpx.post(f"{ctl}/config", json={"stuck": True, "queue_s": 0.05}).json()["stuck"] is True
    job = submit(client, sb, NBP, {"prompt": "ctl"})
    time.sleep(0.2)
    assert client.get(job["status_url"]).json()["status"] == "IN_QUEUE"
    stats = httpx.get(f"{ctl}/stats").json()
    assert stats["submissions"] == 1 and stats["by_endpoint"] == {NBP: 1} and stats["requests"] >= 3
    subs = httpx.get(f"{ctl}/submissions").json()
    assert subs[0]["headers"]["authorization"] == "***" and subs[0]["payload"] == {"prompt": "ctl"}
    assert httpx.post(f"{ctl}/reset").status_code == 200
    assert httpx.get(f"{ctl}/stats").json()["submissions"] == 0
    assert wait(client, job).get("error") is None  # reset released the stuck queue
