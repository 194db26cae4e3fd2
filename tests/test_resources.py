"""aivp://files/: text as text, media with its type, anything over the limits as a note that says how to get it;
and the reference documents served as resources follow the files on disk (the split model reference)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import BlobResourceContents, TextResourceContents

from aivp.app import build_server
from aivp.settings import Secret
from aivp.tools.resources import BLOB_LIMIT, TEXT_LIMIT, doc_files

from .conftest import make_settings, png

HOST_LIMIT = 150_000  # characters of one result a host such as Claude accepts


def noisy_png(path: Path, side: int = 400) -> Path:
    """A PNG that does not compress: random pixels, about 3 bytes per pixel."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path)
    return path


def read(project: Path, uris: list[str], **overrides: Any) -> list[Any]:
    async def go() -> list[Any]:
        async with Client(build_server(make_settings(project, **overrides))) as c:
            return [await c.read_resource(u) for u in uris]

    return anyio.run(go)


def test_text_files_come_back_as_text_with_their_type(project: Path) -> None:
    (project / "video").mkdir()
    (project / "video/plan.md").write_text("| # | Type |\n|---|---|\n| 1 | shot-01 |\n", encoding="utf-8")
    (project / "video/log").mkdir()
    (project / "video/log/shot-01.json").write_text('{"prompt": "Mara, ça va"}', encoding="utf-8")
    (project / "notes.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n", encoding="utf-8")
    (project / "data.bin").write_bytes(bytes(range(256)))
    got = read(project, ["aivp://files/video/plan.md", "aivp://files/video/log/shot-01.json",
                         "aivp://files/notes.srt", "aivp://files/data.bin"])
    plan, record, subtitles, data = (r.contents[0] for r in got)
    assert isinstance(plan, TextResourceContents) and plan.mime_type == "text/markdown" and "| 1 | shot-01 |" in plan.text
    assert isinstance(record, TextResourceContents) and record.mime_type == "application/json"
    assert json.loads(record.text) == {"prompt": "Mara, ça va"}
    assert isinstance(subtitles, TextResourceContents) and "Hello" in subtitles.text
    assert isinstance(data, BlobResourceContents) and base64.b64decode(data.blob) == bytes(range(256))


def test_media_comes_back_as_a_blob_of_its_own_type(project: Path) -> None:
    png(project / "image/frames/shot-01-ff.png", (64, 36))
    got = read(project, ["aivp://files/image/frames/shot-01-ff.png"])
    body = got[0].contents[0]
    assert isinstance(body, BlobResourceContents) and body.mime_type == "image/png"
    assert base64.b64decode(body.blob) == (project / "image/frames/shot-01-ff.png").read_bytes()


def test_a_large_image_is_described_with_the_ways_to_get_it(project: Path) -> None:
    big = noisy_png(project / "image/frames/shot-02-ff.png")
    size = big.stat().st_size
    assert size > BLOB_LIMIT
    got = read(project, ["aivp://files/image/frames/shot-02-ff.png", "aivp://thumb/image/frames/shot-02-ff.png"])
    note, thumb = got[0].contents[0], got[1].contents[0]
    assert isinstance(note, TextResourceContents) and note.mime_type == "text/plain"
    assert len(note.text) < 2_000 and len(got[0].model_dump_json()) < HOST_LIMIT
    for part in ("image/png", "400x400", f"{size:,} bytes", "aivp://thumb/image/frames/shot-02-ff.png",
                 "aivp://preview/image/frames/shot-02-ff.png", str(big), "aivp review --project"):
        assert part in note.text, part
    assert "download" not in note.text  # on stdio there is no download link to offer
    assert note.meta is not None and note.meta["aivp"]["bytes"] == size and note.meta["aivp"]["mime_type"] == "image/png"
    assert isinstance(thumb, BlobResourceContents) and thumb.mime_type == "image/jpeg"  # the preview it points to works


def test_over_http_the_note_gives_the_signed_download_link(project: Path) -> None:
    noisy_png(project / "image/frames/shot-03-ff.png")
    (project / "video/clips").mkdir(parents=True)
    (project / "video/clips/shot-03.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(BLOB_LIMIT + 10))
    png(project / "video/posters/shot-03.jpg", (32, 18))
    got = read(project, ["aivp://files/image/frames/shot-03-ff.png", "aivp://files/video/clips/shot-03.mp4"],
               download_base="http://127.0.0.1:8000", link_key=Secret("k" * 32))
    image, clip = (r.contents[0] for r in got)
    assert "http://127.0.0.1:8000/files/image/frames/shot-03-ff.png?exp=" in image.text and "&sig=" in image.text
    assert image.meta["aivp"]["download_url"].startswith("http://127.0.0.1:8000/files/image/frames/shot-03-ff.png")
    assert isinstance(clip, TextResourceContents) and "(video/mp4, " in clip.text
    assert "aivp://thumb/video/clips/shot-03.mp4 (a frame of the clip" in clip.text
    assert "aivp://files/video/posters/shot-03.jpg" in clip.text and "/files/video/clips/shot-03.mp4?exp=" in clip.text


def test_a_long_text_file_is_described_not_returned(project: Path) -> None:
    (project / "notes.md").write_text("é" * (TEXT_LIMIT + 1), encoding="utf-8")  # 2 bytes a character
    (project / "short.md").write_text("é" * TEXT_LIMIT, encoding="utf-8")
    long, short = (r.contents[0] for r in read(project, ["aivp://files/notes.md", "aivp://files/short.md"]))
    assert isinstance(long, TextResourceContents) and long.mime_type == "text/plain"
    assert f"{TEXT_LIMIT + 1:,} characters" in long.text and "text/markdown" in long.text
    assert "aivp://thumb" not in long.text
    assert isinstance(short, TextResourceContents) and short.text == "é" * TEXT_LIMIT


def test_reference_resources_follow_the_split_model_files() -> None:
    listed = {uri: (path, description) for uri, path, description in doc_files()}
    root = Path(__file__).resolve().parents[1]
    on_disk = {f"aivp://references/{p.stem}" for p in (root / "references").glob("*.md")}
    assert on_disk <= set(listed)
    for kind in ("image", "flux", "edit", "video", "kling"):
        uri = f"aivp://references/models-{kind}"
        assert uri in listed and listed[uri][1].startswith("Model cards:"), uri
    assert "one line" in listed["aivp://references/models"][1]
    assert listed["aivp://references/errors"][1] != "Reference: errors"  # named by its title
