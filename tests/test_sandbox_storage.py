"""The sandbox's fal storage and CDN, and the media it renders.

Token, single and multipart CDN uploads, the signed-URL fallback (and that no key reaches it),
storage faults, Range requests, expired outputs, PNG and MP4 placeholders that open and decode,
and the huge-output mode that streams without buffering.
"""

from __future__ import annotations

import base64
import io
import os
import time
from datetime import datetime
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from aivp.sandbox import Sandbox
from aivp.sandbox.storage import filler

KEY = {"Authorization": "Key test-key"}


@pytest.fixture(scope="module")
def sb():
    with Sandbox(queue_s=0.02, image_s=0.05, video_s=0.05) as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(sb):
    sb.reset()
    yield
    sb.reset()


@pytest.fixture(scope="module")
def client():
    with httpx.Client(headers=KEY, timeout=30) as c:
        yield c


def cdn_token(client: httpx.Client, sb: Sandbox) -> dict[str, Any]:
    r = client.post(f"{sb.fal_rest_url}/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={})
    assert r.status_code == 200, r.text
    return r.json()


def bearer(tok: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"{tok['token_type']} {tok['token']}"}


def upload(sb: Sandbox, tok: dict[str, Any], data: bytes, name: str, ctype: str) -> str:
    r = httpx.post(f"{sb.fal_cdn_url}/files/upload", content=data,
                   headers={**bearer(tok), "Content-Type": ctype, "X-Fal-File-Name": name})
    assert r.status_code == 200, r.text
    return r.json()["access_url"]


def png(size: tuple[int, int], colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def run(client: httpx.Client, sb: Sandbox, endpoint: str, payload: dict[str, Any]) -> httpx.Response:
    job = client.post(f"{sb.fal_queue_url}/{endpoint}", json=payload).json()
    deadline = time.monotonic() + 20
    while client.get(job["status_url"]).json()["status"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return client.get(job["response_url"])


# -- storage ---------------------------------------------------------------------------------


def test_token(sb, client):
    tok = cdn_token(client, sb)
    assert tok["token_type"] == "Bearer" and tok["base_url"] == sb.fal_cdn_url and tok["token"]
    expires = datetime.fromisoformat(tok["expires_at"])
    assert expires.tzinfo is not None and "Z" not in tok["expires_at"]
    assert httpx.post(f"{sb.fal_rest_url}/storage/auth/token", json={}).status_code == 401


def test_single_upload_and_auth(sb, client):
    tok = cdn_token(client, sb)
    url = upload(sb, tok, b"hello sandbox", "my notes.txt", "text/plain")
    assert url.startswith(sb.fal_cdn_url + "/files/") and url.endswith("/my_notes.txt")
    r = httpx.get(url)
    assert r.content == b"hello sandbox" and r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-length"] == "13"
    post = f"{sb.fal_cdn_url}/files/upload"
    assert httpx.post(post, content=b"x", headers=KEY).status_code == 401  # the fal key is not a CDN token
    assert httpx.post(post, content=b"x").status_code == 401
    assert httpx.post(post, content=b"x", headers={"Authorization": "Bearer forged"}).status_code == 401
    sb.configure(token_ttl_s=-1)
    stale = cdn_token(client, sb)
    r = httpx.post(post, content=b"x", headers=bearer(stale))
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_multipart_upload(sb, client):
    tok = cdn_token(client, sb)
    r = httpx.post(f"{tok['base_url']}/files/upload/multipart",
                   headers={**bearer(tok), "Content-Type": "video/mp4", "X-Fal-File-Name": "big.mp4"})
    assert r.status_code == 200
    access_url, upload_id = r.json()["access_url"], r.json()["uploadId"]
    chunks = {1: b"a" * 1000, 2: b"b" * 1000, 3: b"c" * 10}
    etags = {}
    for n in (3, 1, 2):  # parts may arrive in any order
        pr = httpx.put(f"{access_url}/multipart/{upload_id}/{n}", content=chunks[n], headers=bearer(tok))
        assert pr.status_code == 200 and pr.headers["etag"].startswith('"')
        etags[n] = pr.headers["etag"]
    assert httpx.get(access_url).status_code == 404  # not complete yet
    complete = f"{access_url}/multipart/{upload_id}/complete"
    missing = {"parts": [{"partNumber": n, "etag": etags[n]} for n in (1, 2)]}
    assert httpx.post(complete, json=missing, headers=bearer(tok)).status_code == 400
    parts = {"parts": [{"partNumber": n, "etag": etags[n]} for n in (2, 3, 1)]}
    done = httpx.post(complete, json=parts, headers=bearer(tok))
    assert done.status_code == 200 and done.json()["access_url"] == access_url
    got = httpx.get(access_url)
    assert got.content == chunks[1] + chunks[2] + chunks[3] and got.headers["content-type"] == "video/mp4"


def test_initiate_and_signed_put(sb, client):
    r = client.post(f"{sb.fal_rest_url}/storage/upload/initiate", params={"storage_type": "gcs"},
                    json={"file_name": "frame.png", "content_type": "image/png"})
    assert r.status_code == 200
    upload_url, file_url = r.json()["upload_url"], r.json()["file_url"]
    assert "X-Goog-Signature=" in upload_url and file_url.startswith(sb.fal_cdn_url)
    assert httpx.post(f"{sb.fal_rest_url}/storage/upload/initiate", json={}).status_code == 401
    tampered = upload_url.replace("X-Goog-Signature=", "X-Goog-Signature=00")
    assert httpx.put(tampered, content=b"x", headers={"Content-Type": "image/png"}).status_code == 403
    wrong_type = httpx.put(upload_url, content=b"x", headers={"Content-Type": "image/jpeg"})
    assert wrong_type.status_code == 403 and "SignatureDoesNotMatch" in wrong_type.text
    data = png((8, 8))
    assert httpx.put(upload_url, content=data, headers={"Content-Type": "image/png"}).status_code == 200
    assert httpx.get(file_url).content == data
    # a client that leaks its key to the signed-URL host is caught in the record
    assert httpx.put(upload_url, content=data, headers={"Content-Type": "image/png", **KEY}).status_code == 200
    puts = [r for r in sb.requests if r.route == "signed_put"]
    assert [p.authorization_sent for p in puts] == [False, False, False, True]
    assert sb.stats()["signed_put_with_authorization"] == 1

    sb.configure(signed_url_ttl_s=-1)
    stale = client.post(f"{sb.fal_rest_url}/storage/upload/initiate", json={"file_name": "a.png", "content_type": "image/png"})
    r = httpx.put(stale.json()["upload_url"], content=b"x", headers={"Content-Type": "image/png"})
    assert r.status_code == 403 and "ExpiredToken" in r.text


def test_storage_faults(sb, client):
    sb.fault("token", status=500)
    assert client.post(f"{sb.fal_rest_url}/storage/auth/token", json={}).status_code == 500
    tok = cdn_token(client, sb)
    for status in (400, 500):
        sb.fault("upload", status=status)
        r = httpx.post(f"{sb.fal_cdn_url}/files/upload", content=b"x", headers=bearer(tok))
        assert r.status_code == status
    r = httpx.post(f"{sb.fal_cdn_url}/files/upload/multipart", headers={**bearer(tok), "X-Fal-File-Name": "m.bin"})
    access_url, upload_id = r.json()["access_url"], r.json()["uploadId"]
    sb.fault("multipart_part", status=500)
    assert httpx.put(f"{access_url}/multipart/{upload_id}/1", content=b"x", headers=bearer(tok)).status_code == 500
    etag = httpx.put(f"{access_url}/multipart/{upload_id}/1", content=b"x", headers=bearer(tok)).headers["etag"]
    sb.fault("multipart_complete", status=500)
    body = {"parts": [{"partNumber": 1, "etag": etag}]}
    assert httpx.post(f"{access_url}/multipart/{upload_id}/complete", json=body, headers=bearer(tok)).status_code == 500
    assert httpx.post(f"{access_url}/multipart/{upload_id}/complete", json=body, headers=bearer(tok)).status_code == 200
    sb.fault("multipart_init", preset="ingress_503")
    assert httpx.post(f"{sb.fal_cdn_url}/files/upload/multipart", headers=bearer(tok)).status_code == 503
    sb.fault("initiate", status=503)
    assert client.post(f"{sb.fal_rest_url}/storage/upload/initiate", json={}).status_code == 503
    r = client.post(f"{sb.fal_rest_url}/storage/upload/initiate", json={"file_name": "a.png", "content_type": "image/png"})
    sb.fault("signed_put", preset="expired_signature")
    put = httpx.put(r.json()["upload_url"], content=b"x", headers={"Content-Type": "image/png"})
    assert put.status_code == 403 and "ExpiredToken" in put.text


def test_range_requests_and_truncated_download(sb, client):
    tok = cdn_token(client, sb)
    data = bytes(range(256)) * 40
    url = upload(sb, tok, data, "blob.bin", "application/octet-stream")
    r = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}" and r.headers["content-length"] == "10"
    assert httpx.get(url, headers={"Range": "bytes=-5"}).content == data[-5:]
    assert httpx.get(url, headers={"Range": "bytes=10000-"}).content == data[10000:]
    r = httpx.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.headers["accept-ranges"] == "bytes"
    sb.fault("cdn_get", action="drop_body")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    assert httpx.get(url).content == data


# -- rendered media --------------------------------------------------------------------------


def test_png_cards(sb, client):
    r = run(client, sb, "fal-ai/nano-banana-pro", {"prompt": "a lighthouse at dusk", "aspect_ratio": "9:16", "num_images": 2})
    images = r.json()["images"]
    assert len(images) == 2
    for meta in images:
        got = httpx.get(meta["url"])
        assert got.headers["content-type"] == "image/png" and int(got.headers["content-length"]) == meta["file_size"]
        img = Image.open(io.BytesIO(got.content))
        assert img.size == (meta["width"], meta["height"]) and abs(img.width / img.height - 9 / 16) < 0.01


def test_edit_with_references_from_cdn_and_data_uri(sb, client):
    tok = cdn_token(client, sb)
    cdn_ref = upload(sb, tok, png((400, 300), "blue"), "ref.png", "image/png")
    data_ref = "data:image/png;base64," + base64.b64encode(png((300, 400), "green")).decode()
    r = run(client, sb, "fal-ai/nano-banana-pro/edit", {"prompt": "combine", "image_urls": [cdn_ref, data_ref],
                                                        "output_format": "jpeg"})
    assert r.status_code == 200, r.text
    meta = r.json()["images"][0]
    img = Image.open(io.BytesIO(httpx.get(meta["url"]).content))
    assert img.format == "JPEG" and meta["content_type"] == "image/jpeg"
    # the thumbnails of both references are drawn along the bottom of the card
    colours = {img.getpixel((x, int(img.height * 0.85))) for x in range(0, img.width, 4)}
    assert any(b > 150 and r < 80 for r, g, b in colours) and any(g > 100 and r < 80 and b < 80 for r, g, b in colours)


def test_upscale_keeps_input_aspect(sb, client):
    tok = cdn_token(client, sb)
    src = upload(sb, tok, png((200, 100)), "small.png", "image/png")
    out = run(client, sb, "fal-ai/aura-sr", {"image_url": src}).json()
    assert set(out) >= {"image"} and (out["image"]["width"], out["image"]["height"]) == (800, 400)


def _probe(data: bytes) -> tuple[float, int, float, bool, tuple[int, int]]:
    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video=0))
        return float(v.duration * v.time_base), frames, float(v.average_rate), bool(c.streams.audio), (v.width, v.height)


def test_mp4_duration_aspect_and_audio(sb, client):
    r = run(client, sb, "fal-ai/bytedance/seedance/v1.5/pro/text-to-video",
            {"prompt": "a dog runs", "duration": "4", "aspect_ratio": "9:16"})  # generate_audio defaults to true
    video = r.json()["video"]
    data = httpx.get(video["url"]).content
    assert video["content_type"] == "video/mp4" and len(data) == video["file_size"]
    duration, frames, fps, audio, (w, h) = _probe(data)
    assert abs(duration - 4) <= 1 / 24 and frames == 96 and fps == 24 and audio
    assert abs(w / h - 9 / 16) < 0.02 and w % 2 == 0 and h % 2 == 0

    tok = cdn_token(client, sb)
    start = upload(sb, tok, png((640, 360), "purple"), "start.png", "image/png")
    r = run(client, sb, "fal-ai/bytedance/seedance/v1.5/pro/image-to-video",
            {"prompt": "zoom", "image_url": start, "duration": "5", "generate_audio": False})
    duration, frames, _, audio, _ = _probe(httpx.get(r.json()["video"]["url"]).content)
    assert abs(duration - 5) <= 1 / 24 and not audio


def test_expired_outputs(sb, client):
    sb.configure(output_bytes=None)
    url = run(client, sb, "fal-ai/nano-banana-pro", {"prompt": "soon gone"}).json()["images"][0]["url"]
    assert httpx.get(url).status_code == 200
    sb.expire_outputs(404)
    assert httpx.get(url).status_code == 404
    r = run(client, sb, "fal-ai/bytedance/seedance/v1.5/pro/image-to-video", {"prompt": "p", "image_url": url})
    assert r.json()["detail"][0]["type"] == "file_download_error"  # an expired URL as an input
    sb.expire_outputs(403)
    r = httpx.get(url)
    assert r.status_code == 403 and "AccessDenied" in r.text
    sb.reset()
    assert httpx.get(url).status_code == 200
    sb.configure(output_ttl_s=0.1)
    time.sleep(0.15)
    assert httpx.get(url).status_code == 404


def test_sync_mode_returns_data_uris(sb, client):
    img = run(client, sb, "fal-ai/nano-banana-pro", {"prompt": "inline", "sync_mode": True}).json()["images"][0]
    assert img["url"].startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(img["url"].split(",", 1)[1]))).size == (img["width"], img["height"])


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read the RSS")
def test_huge_output_streams_without_buffering(sb, client):
    size = 256 << 20
    sb.configure(output_bytes=size)
    meta = run(client, sb, "fal-ai/bytedance/seedance/v1.5/pro/text-to-video", {"prompt": "huge"}).json()["video"]
    assert meta["file_size"] == size
    stored = sb.job(sb.submissions[-1].request_id).files[0][0]
    assert stored.path is None  # nothing on disk, nothing in memory: bytes are generated per chunk
    base, peak, total = _rss(), 0, 0
    with httpx.stream("GET", meta["url"], timeout=60) as r:
        assert int(r.headers["content-length"]) == size
        for chunk in r.iter_raw(1 << 20):
            total += len(chunk)
            peak = max(peak, _rss() - base)
    assert total == size and peak < 64 << 20
    mid = httpx.get(meta["url"], headers={"Range": "bytes=100000000-100000099"})
    assert mid.status_code == 206 and mid.content == filler(100_000_000, 100_000_100)
    small = run(client, sb, "fal-ai/nano-banana-pro", {"prompt": "[sandbox:bytes=1000]"}).json()["images"][0]
    assert small["file_size"] == 1000 and len(httpx.get(small["url"]).content) == 1000
