"""jobs/outputs.py: a finished job's files placed in the project, checked, never clobbering; and its helpers.

The CDN is an `httpx.MockTransport` serving real PNG/JPEG bytes (and a real H.264 clip made by the
sandbox's renderer), so nothing leaves the process and nothing sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from aivp.errors import OutputLost
from aivp.jobs.outputs import Fetched, Fetcher, actual_cost, fetch_outputs, has_inline, still_there, strip_inline
from aivp.jobspec import JobSpec, ShotPart
from aivp.ledger import JobRow
from aivp.media import image_size, sniff_mime
from aivp.project import Project
from aivp.providers.base import OutputFile
from aivp.providers.http import RetryPolicy

from .conftest import partials

pytestmark = pytest.mark.anyio

CDN = "https://cdn.example/out"
PER_IMAGE = {"usd": 0.3, "unit": "image", "quantity": 2, "unit_price": 0.15, "detail": "2 image(s) x $0.15"}


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), color: str = "teal") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def clip_bytes(seconds: float) -> bytes:
    from PIL import Image

    from aivp.sandbox.video import render_video

    return render_video(size=(160, 90), duration_s=seconds, base=Image.new("RGB", (160, 90), "navy"), end=None,
                        audio=False, label="test clip")


class Cdn:
    """Serves files by name; 404 for anything else. Counts what was asked."""

    def __init__(self, **files: tuple[bytes, str]) -> None:
        self.files = files
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        self.asked.append(name)
        if name not in self.files:
            return httpx.Response(404)
        body, content_type = self.files[name]
        return httpx.Response(200, headers={"content-type": content_type}, content=body)


class Sink:
    """The runner's callbacks: what `save` got after each file, and the progress messages."""

    def __init__(self) -> None:
        self.saved: list[list[dict[str, Any]]] = []
        self.progress: list[str] = []


def job(spec: JobSpec, outputs: list[dict[str, Any]] | None = None, estimate_usd: float = 0.3) -> JobRow:
    return JobRow(id="01JOBTESTAAAAAAAAAAAAAAAAA", idem_key="k", tool="generate_image", model_id=spec.model,
                  provider="fal", endpoint="fal-ai/test", task="t2i", state="fetching", request={}, spec=spec,
                  request_id="req-1", handle=None, queue_position=None, logs=[], result=None,
                  outputs=list(outputs or []), error=None, error_code=None, estimate_usd=estimate_usd, cost_usd=None,
                  created_at="2026-01-01T00:00:00.000Z", submitted_at=None, started_at=None, finished_at=None,
                  updated_at="2026-01-01T00:00:00.000Z")


def image_spec(*targets: str, overwrite: bool = False, estimate: dict[str, Any] | None = PER_IMAGE) -> JobSpec:
    return JobSpec(kind="image", mode="T2I", shape="images", model="nano-banana-pro", prompt="a lighthouse",
                   targets=tuple(targets) or None, overwrite=overwrite, estimate=estimate)


@pytest.fixture
def proj(project: Path) -> Project:
    return Project(project)


async def fetch(proj: Project, cdn: Cdn, row: JobRow, files: list[OutputFile], sink: Sink | None = None) -> Fetched:
    sink = sink or Sink()

    async def no_wait(seconds: float) -> None:
        pass

    async with httpx.AsyncClient(transport=httpx.MockTransport(cdn)) as client:
        f = Fetcher(proj, client, RetryPolicy(attempts=3, base_s=0.01, cap_s=0.01, sleep=no_wait),
                    progress=sink.progress.append, save=lambda done: sink.saved.append([dict(e) for e in done]))
        return await fetch_outputs(f, row, files)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- fetch_outputs

async def test_files_go_to_the_targets_with_what_they_are(proj: Project, project: Path) -> None:
    a, b = image_bytes("PNG", color="red"), image_bytes("PNG", (32, 32), color="blue")
    cdn = Cdn(**{"a.png": (a, "image/png"), "b.png": (b, "image/png")})
    sink = Sink()
    got = await fetch(proj, cdn, job(image_spec("image/frames/shot-01-ff.png")),
                      [OutputFile(f"{CDN}/a.png", "image"), OutputFile(f"{CDN}/b.png", "image")], sink)
    paths = [o["path"] for o in got.outputs]
    assert paths == ["image/frames/shot-01-ff.png", "image/frames/shot-01-ff-2.png"]  # a second image: -2
    assert (project / paths[0]).read_bytes() == a and (project / paths[1]).read_bytes() == b
    first = got.outputs[0]
    assert first["url"] == f"{CDN}/a.png" and first["sha256"] == sha(a) and first["bytes"] == len(a)
    assert (first["kind"], first["content_type"], first["width"], first["height"]) == ("image", "image/png", 64, 48)
    assert first["file_bytes"] == len(a) and first["mtime_ns"] == (project / paths[0]).stat().st_mtime_ns
    assert "converted_from" not in first
    assert [len(s) for s in sink.saved] == [1, 2] and sink.saved[-1] == got.outputs  # told after each file
    assert sink.progress == ["downloading 1/2", "downloading 2/2"]
    assert got.cost_usd == pytest.approx(0.30) and partials(project) == []


async def test_an_existing_file_is_never_clobbered(proj: Project, project: Path) -> None:
    target = project / "image/frames/shot-01-ff.png"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"the user's own frame")
    new = image_bytes("PNG")
    cdn = Cdn(**{"a.png": (new, "image/png")})
    got = await fetch(proj, cdn, job(image_spec("image/frames/shot-01-ff.png")), [OutputFile(f"{CDN}/a.png", "image")])
    assert got.outputs[0]["path"] == "image/frames/shot-01-ff-2.png"
    assert target.read_bytes() == b"the user's own frame" and (project / "image/frames/shot-01-ff-2.png").read_bytes() == new

    # overwrite=True (a redo asked for it): the name is replaced
    got = await fetch(proj, cdn, job(image_spec("image/frames/shot-01-ff.png", overwrite=True)),
                      [OutputFile(f"{CDN}/a.png", "image")])
    assert got.outputs[0]["path"] == "image/frames/shot-01-ff.png" and target.read_bytes() == new
    assert partials(project) == []


async def test_jpeg_bytes_for_a_png_target_are_re_encoded(proj: Project, project: Path) -> None:
    jpeg = image_bytes("JPEG", (80, 60))
    cdn = Cdn(**{"a.jpg": (jpeg, "image/jpeg")})
    got = await fetch(proj, cdn, job(image_spec("image/frames/shot-02-ff.png")), [OutputFile(f"{CDN}/a.jpg", "image")])
    out = got.outputs[0]
    placed = project / "image/frames/shot-02-ff.png"
    assert out["path"] == "image/frames/shot-02-ff.png" and sniff_mime(placed) == "image/png"
    assert out["converted_from"] == "image/jpeg" and image_size(placed) == (80, 60)
    assert out["sha256"] == sha(jpeg)  # what the provider sent ...
    assert out["file_sha256"] == sha(placed.read_bytes()) != out["sha256"]  # ... and what the file holds
    assert out["file_bytes"] == placed.stat().st_size
    assert still_there(proj, got.outputs)


async def test_a_second_call_skips_files_already_placed(proj: Project, project: Path) -> None:
    cdn = Cdn(**{"a.png": (image_bytes("PNG"), "image/png"), "b.png": (image_bytes("PNG", color="red"), "image/png")})
    files = [OutputFile(f"{CDN}/a.png", "image"), OutputFile(f"{CDN}/b.png", "image")]
    spec = image_spec("image/frames/shot-03-ff.png")
    sink = Sink()
    full = await fetch(proj, cdn, job(spec), files, sink)
    assert cdn.asked == ["a.png", "b.png"]

    # a restart after the first file was saved: only the second is fetched again
    (project / full.outputs[1]["path"]).unlink()
    cdn.asked.clear()
    again_sink = Sink()
    again = await fetch(proj, cdn, job(spec, outputs=sink.saved[0]), files, again_sink)
    assert cdn.asked == ["b.png"] and again_sink.progress == ["downloading 2/2"]
    assert [o["path"] for o in again.outputs] == [o["path"] for o in full.outputs]  # same names, no -2
    assert again.outputs[0] == full.outputs[0]

    # everything placed: nothing fetched, nothing saved
    cdn.asked.clear()
    last_sink = Sink()
    last = await fetch(proj, cdn, job(spec, outputs=again.outputs), files, last_sink)
    assert cdn.asked == [] and last_sink.saved == [] and last.outputs == again.outputs


async def test_a_lost_output_leaves_nothing_behind(proj: Project, project: Path) -> None:
    cdn = Cdn()  # every link 404s
    sink = Sink()
    with pytest.raises(OutputLost, match="expired or is gone"):
        await fetch(proj, cdn, job(image_spec("image/frames/shot-04-ff.png")),
                    [OutputFile(f"{CDN}/gone.png", "image")], sink)
    assert len(cdn.asked) == 3  # two CDN-lag retries first
    assert sink.saved == [] and not (project / "image/frames/shot-04-ff.png").exists() and partials(project) == []


async def test_inline_output_and_generated_name(proj: Project, project: Path) -> None:
    png = image_bytes("PNG")
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    row = job(image_spec())  # no target: the generated/ folder, named after the prompt and the job
    got = await fetch(proj, Cdn(), row, [OutputFile(uri, "image", content_type="image/png")])
    out = got.outputs[0]
    assert out["path"] == f"image/generated/a-lighthouse-{row.id[-8:].lower()}.png"
    assert (project / out["path"]).read_bytes() == png
    assert out["url"] == f"data:image/png;sha256={sha(png)}"  # the ledger keeps the hash, not the bytes


async def test_video_is_checked_and_gets_a_poster(proj: Project, project: Path) -> None:
    clip = clip_bytes(2.0)
    cdn = Cdn(**{"v.mp4": (clip, "video/mp4")})
    spec = JobSpec(kind="video", mode="T2V", shape="video", model="seedance-1.5-pro", prompt="waves",
                   targets=("video/clips/shot-01.mp4",), effective={"duration": "2"},
                   estimate={"usd": 0.2, "unit": "second", "quantity": 2, "unit_price": 0.1, "detail": "2 s"})
    got = await fetch(proj, cdn, job(spec, estimate_usd=0.2), [OutputFile(f"{CDN}/v.mp4", "video")])
    out = got.outputs[0]
    assert out["path"] == "video/clips/shot-01.mp4" and out["kind"] == "video"
    assert out["check"]["ok"], out["check"]
    assert out["duration_s"] == pytest.approx(2.0, abs=0.1)
    assert (out["width"], out["height"]) == (160, 90)
    assert out["poster"] == "video/posters/shot-01.jpg" and (project / out["poster"]).is_file()
    assert got.cost_usd == 0.2  # not per image: the estimate


async def test_multi_shot_clip_is_cut_into_its_shots(proj: Project, project: Path) -> None:
    cdn = Cdn(**{"g.mp4": (clip_bytes(3.0), "video/mp4")})
    (project / "video/clips").mkdir(parents=True)
    (project / "video/clips/shot-05.mp4").write_bytes(b"an older take")
    spec = JobSpec(kind="video", mode="MULTI", shape="video", model="kling-o3-pro", effective={"duration": "3"},
                   shots=(ShotPart(1, "one", "one", 1.0, "video/clips/shot-04.mp4"),
                          ShotPart(2, "two", "two", 2.0, "video/clips/shot-05.mp4")), split=True, group=True)
    sink = Sink()
    got = await fetch(proj, cdn, job(spec, estimate_usd=1.0), [OutputFile(f"{CDN}/g.mp4", "video")], sink)
    paths = [o["path"] for o in got.outputs]
    assert paths == ["video/clips/group-01.mp4", "video/clips/shot-04.mp4", "video/clips/shot-05-2.mp4"]
    assert (project / "video/clips/shot-05.mp4").read_bytes() == b"an older take"
    parts = got.outputs[1:]
    assert [(p["split_of"], p["shot"]) for p in parts] == [("video/clips/group-01.mp4", 1), ("video/clips/group-01.mp4", 2)]
    assert [p["duration_s"] for p in parts] == [pytest.approx(1.0, abs=0.15), pytest.approx(2.0, abs=0.15)]
    assert all((project / p).is_file() for p in paths) and [len(s) for s in sink.saved] == [1, 3]
    assert got.cost_usd == 1.0


# ---------------------------------------------------------------- helpers

async def test_still_there(proj: Project, project: Path) -> None:
    cdn = Cdn(**{"a.png": (image_bytes("PNG"), "image/png")})
    got = await fetch(proj, cdn, job(image_spec("image/styles/look.png")), [OutputFile(f"{CDN}/a.png", "image")])
    outputs = got.outputs
    path = project / "image/styles/look.png"
    assert still_there(proj, outputs)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched (a copy, a restore): same bytes
    assert still_there(proj, outputs)
    path.write_bytes(image_bytes("PNG", color="red"))  # replaced by another picture
    assert not still_there(proj, outputs)
    path.unlink()
    assert not still_there(proj, outputs)
    assert not still_there(proj, [])
    legacy = [{"path": "image/styles/old.png"}]  # recorded before aivp kept sizes and times: the name decides
    assert not still_there(proj, legacy)
    (project / "image/styles/old.png").write_bytes(b"x")
    assert still_there(proj, legacy)


def test_strip_inline_and_has_inline() -> None:
    body = base64.b64encode(b"\x89PNG" + b"\x00" * 600).decode()
    uri = f"data:image/png;base64,{body}"
    result = {"images": [{"url": uri, "width": 1}, {"url": "https://cdn/x.png"}], "seed": 7,
              "thumb": "data:image/png;base64,AAAA"}  # short ones are kept
    stripped = strip_inline(result)
    assert stripped["images"][0] == {"url": f"data:image/png;sha256={sha(body.encode())}", "width": 1}
    assert stripped["images"][1] == {"url": "https://cdn/x.png"} and stripped["seed"] == 7
    assert stripped["thumb"] == "data:image/png;base64,AAAA"
    assert has_inline(result) and not has_inline(stripped) and not has_inline(None)
    assert strip_inline(stripped) == stripped and result["images"][0]["url"] == uri  # the input is not changed


def test_actual_cost_bills_the_images_that_came_back() -> None:
    images = [{"path": f"image/generated/x-{n}.png", "kind": "image"} for n in range(3)]
    assert actual_cost(job(image_spec(), estimate_usd=0.3), images) == pytest.approx(0.45)  # 3 back, 2 asked
    assert actual_cost(job(image_spec(), estimate_usd=0.3), images[:1]) == pytest.approx(0.15)
    assert actual_cost(job(image_spec(), estimate_usd=0.3), []) == 0.3  # nothing counted: the estimate
    per_call = {"usd": 0.5, "unit": "call", "quantity": 1, "unit_price": 0.5, "detail": "$0.5 per call"}
    assert actual_cost(job(image_spec(estimate=per_call), estimate_usd=0.5), images) == 0.5
    assert actual_cost(job(image_spec(estimate=None), estimate_usd=0.25), images) == 0.25
    split = [*images[:1], {"path": "video/clips/shot-01.mp4", "split_of": "x"}]
    assert actual_cost(job(image_spec(), estimate_usd=0.3), split) == pytest.approx(0.15)
