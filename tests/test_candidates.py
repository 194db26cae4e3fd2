"""generate_candidates, list_candidates, manage_candidates: generate (kept across regenerations), list, select, delete, upload; all inside the project."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import ImageContent

from aivp.demo import SAMPLE

from .conftest import ok, png, refused

pytestmark = pytest.mark.anyio
FOLDER = "image/candidates/shot-01"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def names(result: dict[str, Any]) -> list[str]:
    return [c["file"].rsplit("/", 1)[-1] for c in result["candidates"]]


def plan_row(project: Path, file: str) -> list[str]:
    for line in (project / "image/plan.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[2] == f"`{file}`":
            return cells
    raise AssertionError(f"no plan row for {file}")


async def test_regenerating_keeps_earlier_candidates(client: Client, project: Path, sandbox: Any) -> None:
    r = await client.call_tool("generate_candidates", {"shot": 1, "count": 2,
                                                       "prompt": "A lighthouse keeper at the window"})
    assert not r.is_error, r.content[0].text
    first = r.structured_content
    assert names(first) == ["ff-c1.png", "ff-c2.png"] and first["jobs"][0]["status"] == "completed"
    assert any(isinstance(c, ImageContent) for c in r.content)  # the candidates side by side
    sub = sandbox.submissions[-1]
    assert sandbox.submission_count() == 1 and sub.payload["num_images"] == 2  # one call makes both
    record = json.loads((project / "image/log/shot-01-ff-c2.json").read_text())
    assert record["file"] == f"{FOLDER}/ff-c2.png" and record["type"] == "candidate"
    assert not (project / "image/plan.md").exists()  # candidates are not plan rows; the chosen frame is

    again = await ok(client, "generate_candidates", {"shot": "shot-01", "count": 1,
                                                     "prompt": "A lighthouse keeper at the window"})
    assert names(again) == ["ff-c1.png", "ff-c2.png", "ff-c3.png"] and sandbox.submission_count() == 2
    last = await ok(client, "generate_candidates", {"shot": 1, "frame": "last", "count": 1,
                                                    "prompt": "The keeper turns away"})
    assert names(last)[-1] == "lf-c1.png"
    listing = await ok(client, "list_candidates", {"shot": 1})
    assert names(listing) == ["ff-c1.png", "ff-c2.png", "ff-c3.png", "lf-c1.png"]
    assert not any(c["selected"] for c in listing["candidates"]) and listing["frames"] == {}


async def test_a_model_without_num_images_gets_one_job_per_candidate(client: Client, project: Path, sandbox: Any) -> None:
    got = await ok(client, "generate_candidates", {"shot": 2, "count": 3, "model": "flux-2-pro",
                                                   "prompt": "Rain on a window"})
    assert names(got) == ["ff-c1.png", "ff-c2.png", "ff-c3.png"] and len(got["jobs"]) == 3
    seeds = [s.payload["seed"] for s in sandbox.submissions]
    assert sandbox.submission_count() == 3 and len(set(seeds)) == 3
    assert len({sha(project / c["file"]) for c in got["candidates"]}) == 3


async def test_select_copies_updates_plan_and_keeps_old_clips(client: Client, project: Path, sandbox: Any) -> None:
    await ok(client, "generate_candidates", {"shot": 1, "count": 2, "prompt": "A harbour at dawn"})
    chosen = await ok(client, "manage_candidates", {"shot": 1, "action": "select", "candidate": "ff-c2.png"})
    frame = project / "image/frames/shot-01-ff.png"
    assert sha(frame) == sha(project / FOLDER / "ff-c2.png") and chosen["frames"] == {"first": "image/frames/shot-01-ff.png"}
    assert [c["selected"] for c in chosen["candidates"]] == [False, True]
    sel = json.loads((project / FOLDER / "selected.json").read_text())
    assert sel["first"] == f"{FOLDER}/ff-c2.png" and sel["first_selected_at"]
    row = plan_row(project, "image/frames/shot-01-ff.png")
    assert row[1] == "shot-01-ff" and row[3] == "`fal-ai/nano-banana-pro`" and row[5] == "selected"
    record = json.loads((project / "image/log/shot-01-ff.json").read_text())
    assert record["selected_from"] == f"{FOLDER}/ff-c2.png" and record["model"] == "nano-banana-pro"

    clip = await ok(client, "generate_video", {"prompt": "waves", "image": "image/frames/shot-01-ff.png",
                                               "output": "video/clips/shot-01.mp4"})
    old_clip = project / clip["files"][0]["path"]
    old_bytes = old_clip.read_bytes()
    await ok(client, "manage_candidates", {"shot": 1, "action": "select", "candidate": f"{FOLDER}/ff-c1.png"})
    assert sha(frame) == sha(project / FOLDER / "ff-c1.png")
    assert json.loads((project / FOLDER / "selected.json").read_text())["first"] == f"{FOLDER}/ff-c1.png"
    newer = await ok(client, "generate_video", {"prompt": "waves", "image": "image/frames/shot-01-ff.png",
                                                "output": "video/clips/shot-01.mp4"})
    assert newer["job_id"] != clip["job_id"] and newer["files"][0]["path"] == "video/clips/shot-01-2.mp4"
    assert old_clip.read_bytes() == old_bytes and len(list((project / FOLDER).glob("*.png"))) == 2


async def test_delete_refuses_the_selected_one(client: Client, project: Path, sandbox: Any) -> None:
    await ok(client, "generate_candidates", {"shot": 4, "count": 2, "prompt": "A stairwell"})
    await ok(client, "manage_candidates", {"shot": 4, "action": "select", "candidate": "ff-c1"})
    text = await refused(client, "manage_candidates", {"shot": 4, "action": "delete", "candidate": "ff-c1.png"})
    assert "select another first" in text and (project / "image/candidates/shot-04/ff-c1.png").is_file()
    gone = await ok(client, "manage_candidates", {"shot": 4, "action": "delete", "candidate": "ff-c2.png"})
    assert names(gone) == ["ff-c1.png"] and not (project / "image/log/shot-04-ff-c2.json").exists()
    assert (project / "image/log/shot-04-ff-c1.json").is_file()
    text = await refused(client, "manage_candidates", {"shot": 4, "action": "select", "candidate": "ff-c9.png"})
    assert "no candidate 'ff-c9.png'" in text and "ff-c1.png" in text


async def test_upload_a_custom_keyframe_and_select_it(client: Client, project: Path, sandbox: Any) -> None:
    from PIL import Image

    (project / "drawings").mkdir()
    Image.new("RGB", (160, 90), "pink").save(project / "drawings/hand-drawn.jpg", "JPEG")
    png(project / "image/frames/shot-03-ff.png", color="olive")  # made earlier, not a candidate
    earlier = sha(project / "image/frames/shot-03-ff.png")
    up = await ok(client, "manage_candidates", {"shot": 3, "action": "upload", "file": "drawings/hand-drawn.jpg"})
    assert names(up) == ["ff-u1.png"] and up["candidates"][0]["source"] == "upload"
    with Image.open(project / "image/candidates/shot-03/ff-u1.png") as im:
        assert im.format == "PNG" and im.size == (160, 90)
    chosen = await ok(client, "manage_candidates", {"shot": 3, "action": "select", "candidate": "ff-u1.png"})
    assert sha(project / "image/frames/shot-03-ff.png") == sha(project / "image/candidates/shot-03/ff-u1.png")
    assert names(chosen) == ["ff-p1.png", "ff-u1.png"]  # the replaced frame is kept as a candidate
    assert sha(project / "image/candidates/shot-03/ff-p1.png") == earlier
    assert plan_row(project, "image/frames/shot-03-ff.png")[3:] == ["`upload`", "UPLOAD", "selected"]
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize("bad", ["../outside.png", "ABS", "drawings/link.png", ".aivp/ledger.sqlite3"])
async def test_uploads_from_outside_the_project_are_refused(client: Client, project: Path, bad: str) -> None:
    outside = png(project.parent / "outside.png")
    (project / "drawings").mkdir()
    (project / "drawings/link.png").symlink_to(outside)
    before = sorted(p.name for p in project.parent.iterdir())
    text = await refused(client, "manage_candidates", {"shot": 1, "action": "upload",
                                                         "file": str(outside) if bad == "ABS" else bad})
    assert "outside the project" in text or ".aivp" in text
    assert not (project / "image").exists() and sorted(p.name for p in project.parent.iterdir()) == before
    text = await refused(client, "manage_candidates", {"shot": 1, "action": "select", "candidate": "../../outside.png"})
    assert "not a candidate" in text or "outside the project" in text


async def test_the_storyboard_gives_prompt_references_and_ratio(client: Client, project: Path, sandbox: Any) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    png(project / "image/characters/mara-side.png", color="yellow")
    png(project / "image/locations/lighthouse-stairwell.png", color="gray")
    est = await ok(client, "generate_candidates", {"shot": "1.1", "dry_run": True})
    assert est["shot"] == 1 and len(est["jobs"]) == 1 and est["jobs"][0]["status"] == "estimate"
    assert est["jobs"][0]["label"] == "ff-c1.png, ff-c2.png, ff-c3.png, ff-c4.png"
    assert est["estimate_usd"] == pytest.approx(0.60)
    assert any("Prompt from the storyboard" in n and "Mara (side)" in n for n in est["notes"])
    assert sandbox.stats()["requests"] == 0 and not (project / "image/candidates").exists()
    r = await client.call_tool("generate_candidates", {"shot": 1, "count": 1})
    assert not r.is_error, r.content[0].text
    payload = sandbox.submissions[-1].payload
    assert "spiral cast-iron staircase" in payload["prompt"] and "silver braid" in payload["prompt"]
    assert len(payload["image_urls"]) == 2 and payload["aspect_ratio"] == "16:9"
    text = await refused(client, "generate_candidates", {"shot": 1, "frame": "last"})
    assert "no last frame" in text
    text = await refused(client, "generate_candidates", {"shot": 40})
    assert "Pass prompt" in text


async def test_past_wait_the_jobs_go_on_and_list_shows_them(client: Client, project: Path, sandbox: Any) -> None:
    first = await ok(client, "generate_candidates", {"shot": 5, "count": 2, "wait_s": 0.05,
                                                     "prompt": "A slow frame [sandbox:slow=0.5]"})
    assert first["jobs"][0]["job_id"] and first["jobs"][0]["status"] != "completed" and "list" in first["next_step"]
    more = await ok(client, "generate_candidates", {"shot": 5, "count": 1, "wait_s": 0.05,
                                                    "prompt": "Another [sandbox:slow=0.5]"})
    assert more["jobs"][0]["label"] == "ff-c3.png"  # names held by running jobs are not given twice
    listing = await ok(client, "queue_status", {"job_id": first["jobs"][0]["job_id"], "wait_s": 20})
    assert listing["job"]["status"] == "completed"
    await ok(client, "queue_status", {"job_id": more["jobs"][0]["job_id"], "wait_s": 20})
    done = await ok(client, "list_candidates", {"shot": 5})
    assert names(done) == ["ff-c1.png", "ff-c2.png", "ff-c3.png"] and done["jobs"] == []
