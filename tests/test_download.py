"""download.py: streaming an output into a temporary file, resumed or restarted after a broken transfer.

Every case runs on an `httpx.MockTransport` (no socket at all), and the retry policy's `sleep` is a
recorder, so nothing waits on the clock.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from aivp.download import CHUNK, download
from aivp.errors import OutputLost, ProviderUnavailable
from aivp.providers.http import RetryPolicy

pytestmark = pytest.mark.anyio

URL = "https://cdn.example/files/out/clip.mp4"
# Bytes reach the file in CHUNK (1 MiB) pieces: a body of a few chunks, every offset distinguishable.
BODY = b"".join(i.to_bytes(4, "big") for i in range(3 * CHUNK // 4 + 1000))


class Broken(httpx.AsyncByteStream):
    """A body that stops after `cut` bytes with a connection reset."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut = data, cut

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data[: self.cut]
        raise httpx.ReadError("connection reset by peer")


class Server:
    """A MockTransport handler that answers each request with the next scripted response."""

    def __init__(self, *answers: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.answers, f"unexpected request {request.method} {request.url}"
        return self.answers.pop(0)(request)

    @property
    def ranges(self) -> list[str | None]:
        return [r.headers.get("range") for r in self.requests]


def ok(body: bytes = BODY, content_type: str = "video/mp4") -> Callable[[httpx.Request], httpx.Response]:
    return lambda r: httpx.Response(200, headers={"content-type": content_type}, content=body)


def broken_at(cut: int, body: bytes = BODY) -> Callable[[httpx.Request], httpx.Response]:
    return lambda r: httpx.Response(200, headers={"content-type": "video/mp4", "content-length": str(len(body))},
                                    stream=Broken(body, cut))


def partial_from_range(body: bytes = BODY) -> Callable[[httpx.Request], httpx.Response]:
    def answer(r: httpx.Request) -> httpx.Response:
        start = int(r.headers["range"].removeprefix("bytes=").rstrip("-"))
        rest = body[start:]
        return httpx.Response(206, headers={"content-range": f"bytes {start}-{len(body) - 1}/{len(body)}",
                                            "content-length": str(len(rest))}, content=rest)
    return answer


def status(code: int) -> Callable[[httpx.Request], httpx.Response]:
    return lambda r: httpx.Response(code, content=b"<Error>gone</Error>")


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder for the downloads (tmp_path also holds the hermetic home)."""
    path = tmp_path / "dl"
    path.mkdir()
    return path


def policy(sleeps: Sleeps, attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_s=0.5, cap_s=4.0, sleep=sleeps)


async def fetch(server: Server, dest: Path, sleeps: Sleeps, url: str = URL, attempts: int = 4) -> object:
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
        return await download(client, url, dest, policy=policy(sleeps, attempts))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_plain_download(folder: Path, sleeps: Sleeps) -> None:
    server = Server(ok(content_type="video/mp4; charset=binary"))
    got = await fetch(server, folder / "clip.part", sleeps)
    assert (folder / "clip.part").read_bytes() == BODY
    assert (got.size, got.sha256, got.content_type) == (len(BODY), sha(BODY), "video/mp4")  # type: ignore[attr-defined]
    assert server.ranges == [None] and sleeps.delays == []
    assert "authorization" not in server.requests[0].headers  # output links are public: no key goes with them


async def test_broken_transfer_resumes_with_a_range_request(folder: Path, sleeps: Sleeps) -> None:
    # the break comes 5000 bytes into the second MiB: the first MiB is on disk, the rest is asked for again
    server = Server(broken_at(CHUNK + 5000), partial_from_range())
    dest = folder / "clip.part"
    got = await fetch(server, dest, sleeps)
    assert server.ranges == [None, f"bytes={CHUNK}-"]
    assert dest.read_bytes() == BODY
    assert got.size == len(BODY) and got.sha256 == sha(BODY)  # type: ignore[attr-defined]
    assert len(sleeps.delays) == 1  # waited (through the policy) once before resuming


async def test_server_ignoring_range_restarts_cleanly(folder: Path, sleeps: Sleeps) -> None:
    server = Server(broken_at(CHUNK + 5000), ok())  # answers the Range request with the whole body again
    dest = folder / "clip.part"
    got = await fetch(server, dest, sleeps)
    assert server.ranges == [None, f"bytes={CHUNK}-"]
    assert dest.read_bytes() == BODY  # not the first MiB twice
    assert got.size == len(BODY) and got.sha256 == sha(BODY)  # type: ignore[attr-defined]


async def test_resume_after_two_breaks(folder: Path, sleeps: Sleeps) -> None:
    def broken_range(cut: int) -> Callable[[httpx.Request], httpx.Response]:
        def answer(r: httpx.Request) -> httpx.Response:
            start = int(r.headers["range"].removeprefix("bytes=").rstrip("-"))
            rest = BODY[start:]
            return httpx.Response(206, headers={"content-range": f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"},
                                  stream=Broken(rest, cut))
        return answer

    server = Server(broken_at(CHUNK + 10), broken_range(CHUNK + 10), partial_from_range())
    got = await fetch(server, folder / "clip.part", sleeps)
    assert server.ranges == [None, f"bytes={CHUNK}-", f"bytes={2 * CHUNK}-"]
    assert got.sha256 == sha(BODY) and (folder / "clip.part").read_bytes() == BODY  # type: ignore[attr-defined]


@pytest.mark.parametrize("code", [403, 404, 410])
async def test_gone_after_the_cdn_lag_retries_is_output_lost(folder: Path, sleeps: Sleeps, code: int) -> None:
    server = Server(status(code), status(code), status(code))
    dest = folder / "clip.part"
    with pytest.raises(OutputLost) as info:
        await fetch(server, dest, sleeps)
    assert f"HTTP {code}" in str(info.value) and URL in str(info.value)
    assert len(server.requests) == 3 and len(sleeps.delays) == 2
    assert not dest.exists()


async def test_cdn_lag_then_the_file(folder: Path, sleeps: Sleeps) -> None:
    server = Server(status(404), status(404), ok())
    got = await fetch(server, folder / "clip.part", sleeps)
    assert got.sha256 == sha(BODY) and len(server.requests) == 3  # type: ignore[attr-defined]


async def test_short_body_is_retried(folder: Path, sleeps: Sleeps) -> None:
    short = BODY[:CHUNK + 6000]  # the server promised all of it, then sent less and closed cleanly
    server = Server(lambda r: httpx.Response(200, headers={"content-length": str(len(BODY))}, content=short),
                    partial_from_range())
    dest = folder / "clip.part"
    got = await fetch(server, dest, sleeps)
    assert server.ranges == [None, f"bytes={CHUNK + 6000}-"]  # a clean end keeps every byte received
    assert dest.read_bytes() == BODY and got.size == len(BODY)  # type: ignore[attr-defined]
    assert len(sleeps.delays) == 1


async def test_server_errors_are_retried_then_given_up(folder: Path, sleeps: Sleeps) -> None:
    server = Server(status(503), status(429), ok())
    got = await fetch(server, folder / "a.part", sleeps)
    assert got.sha256 == sha(BODY) and len(sleeps.delays) == 2  # type: ignore[attr-defined]

    dest = folder / "b.part"
    server = Server(*[status(502)] * 3)
    with pytest.raises(ProviderUnavailable, match="kept failing"):
        await fetch(server, dest, sleeps, attempts=3)
    assert len(server.requests) == 3 and not dest.exists()


async def test_no_partial_file_is_left_after_a_failure(folder: Path, sleeps: Sleeps) -> None:
    dest = folder / "clip.part"
    dest.write_bytes(b"left over from an earlier attempt")
    server = Server(broken_at(5000), *[broken_at(5000)] * 2)  # every attempt breaks; resumes get 200s
    with pytest.raises(ProviderUnavailable):
        await fetch(server, dest, sleeps, attempts=3)
    assert not dest.exists()
    assert list(folder.iterdir()) == []

    server = Server(broken_at(5000), status(500), status(418))  # a status aivp does not retry
    with pytest.raises(OutputLost, match="HTTP 418"):
        await fetch(server, dest, sleeps)
    assert list(folder.iterdir()) == []


async def test_data_uri_is_decoded_without_a_request(folder: Path, sleeps: Sleeps) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    server = Server()
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    got = await fetch(server, folder / "a.part", sleeps, url=uri)
    assert (folder / "a.part").read_bytes() == png
    assert (got.size, got.sha256, got.content_type) == (len(png), sha(png), "image/png")  # type: ignore[attr-defined]
    assert server.requests == []
    with pytest.raises(OutputLost, match="not base64"):
        await fetch(server, folder / "b.part", sleeps, url="data:image/png,rawbytes")


@pytest.mark.parametrize("url", ["ftp://cdn.example/out.png", "file:///etc/passwd", "gs://bucket/out.png"])
async def test_non_http_links_are_refused(folder: Path, sleeps: Sleeps, url: str) -> None:
    server = Server()
    with pytest.raises(OutputLost, match="only http"):
        await fetch(server, folder / "a.part", sleeps, url=url)
    assert server.requests == [] and list(folder.iterdir()) == []
