"""multi_shot_video: Kling multi_prompt + elements, limits from the catalog, split into per-shot clips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from .conftest import ok, png, refused

pytestmark = pytest.mark.anyio

ELEMENTS = [{"name": "Mara", "frontal_image": "image/characters/mara-front.png",
             "references": ["image/characters/mara-side.png"]},
            {"name": "Theo", "frontal_image": "image/characters/theo-front.png"}]


@pytest.fixture
def cast(project: Path) -> Path:
    for name, color in (("mara-front", "gold"), ("mara-side", "orange"), ("theo-front", "navy")):
        png(project / f"image/characters/{name}.png", size=(300, 400), color=color)
    return project


@pytest.mark.slow
async def test_dialogue_scene_split_into_shots(client: Client, cast: Path, sandbox: Any) -> None:
    from aivp.media import probe_video

    shots = [{"prompt": "@Mara trims the wick. [Mara, calm]: \"Hold the light steady.\"", "duration": 4,
              "output": "video/clips/shot-03.mp4"},
             {"prompt": "Close-up of @Theo at the radio, headphones on.", "duration": 3, "output": "video/clips/shot-04.mp4"},
             {"prompt": "@Mara and @Theo watch the storm through the glass.", "duration": 5, "output": "video/clips/shot-05.mp4"}]
    job = await ok(client, "multi_shot_video", {"shots": shots, "elements": ELEMENTS, "split": True, "audio": True,
                                                "master_prompt": "Lantern room at night, storm outside."})
    assert job["status"] == "completed" and job["endpoint"].endswith("o3/pro/reference-to-video")
    paths = [f["path"] for f in job["files"]]
    assert paths == ["video/clips/group-01.mp4", "video/clips/shot-03.mp4", "video/clips/shot-04.mp4",
                     "video/clips/shot-05.mp4"]
    for f, want in zip(job["files"][1:], (4, 3, 5), strict=True):
        info = probe_video(cast / f["path"])
        assert info.duration_s == pytest.approx(want, abs=1 / 24 + 0.01) and info.has_audio
    payload = sandbox.submissions[-1].payload
    assert payload["duration"] == "12" and [m["duration"] for m in payload["multi_prompt"]] == ["4", "3", "5"]
    assert payload["multi_prompt"][0]["prompt"].startswith("Lantern room at night, storm outside. @Element1 trims")
    assert "@Element1 and @Element2" in payload["multi_prompt"][2]["prompt"] and "prompt" not in payload
    assert len(payload["elements"]) == 2 and len(payload["elements"][0]["reference_image_urls"]) == 1
    record = json.loads((cast / "video/log/group-01.json").read_text())
    assert record["type"] == "group" and record["mode"] == "MULTI" and record["elements"] == ["Mara", "Theo"]
    assert [s["file"] for s in record["shots"]] == paths[1:] and record["shots"][1]["duration"] == 3
    plan = (cast / "video/plan.md").read_text()
    assert all(f"`{p}`" in plan for p in paths)
    again = await ok(client, "multi_shot_video", {"shots": shots, "elements": ELEMENTS, "split": True, "audio": True,
                                                  "master_prompt": "Lantern room at night, storm outside."})
    assert again["reused"] and sandbox.submission_count() == 1 and len(again["files"]) == 4
    for n, (shot, want) in enumerate(zip(shots, (4, 3, 5), strict=True), start=1):  # every file has its record
        part = json.loads((cast / f"video/log/shot-0{n + 2}.json").read_text())
        assert part["file"] == shot["output"] and part["group"]["file"] == "video/clips/group-01.mp4"
        assert part["group"]["job_id"] == job["job_id"] and part["prompt"] == shot["prompt"] and part["duration"] == want
        assert part["cost_usd"] == 0 and part["group"]["cost_usd"] == record["cost_usd"]  # paid once, on the group


async def test_start_frame_uses_image_to_video(client: Client, cast: Path, sandbox: Any) -> None:
    png(cast / "image/frames/shot-06-ff.png")
    job = await ok(client, "multi_shot_video", {"image": "image/frames/shot-06-ff.png", "model": "kling-v3-pro",
                                                "shots": [{"prompt": "Wide: the lamp turns.", "duration": 3},
                                                          {"prompt": "The beam sweeps the sea.", "duration": 4}]})
    assert job["endpoint"] == "fal-ai/kling-video/v3/pro/image-to-video" and job["files"][0]["path"] == "video/clips/group-01.mp4"
    assert sandbox.submissions[-1].payload["start_image_url"].startswith(sandbox.fal_cdn_url)


@pytest.mark.parametrize(("args", "message"), [
    ({"shots": [{"prompt": f"s{i}", "duration": 3} for i in range(7)]}, "at most 6 shots"),
    ({"shots": [{"prompt": "a", "duration": 2}, {"prompt": "b", "duration": 5}]}, "at least 3 s"),
    ({"shots": [{"prompt": "a", "duration": 9}, {"prompt": "b", "duration": 9}]}, "add up to 18 s"),
    ({"shots": [{"prompt": "a", "duration": 3.5}]}, "whole seconds"),
    ({"shots": [{"prompt": "a", "duration": 4, "output": "video/clips/x.mp4"}]}, "split=true"),
    ({"shots": [{"prompt": "@Mara", "duration": 4}], "elements": [ELEMENTS[0], ELEMENTS[0]]}, "share a name"),
    ({"shots": [{"prompt": "@Mara", "duration": 4}],
      "elements": [{"name": "Mara", "frontal_image": "image/characters/mara-front.png",
                    "references": ["image/characters/mara-side.png"] * 4}]}, "element 1 has 4 reference images"),
    ({"shots": [{"prompt": "a", "duration": 4}], "elements": [{"name": "A", "video": "https://h/a.mp4"},
                                                              {"name": "B", "video": "https://h/b.mp4"}]}, "video element"),
    ({"shots": [{"prompt": "a", "duration": 4}], "elements": [{"name": "A"}]}, "needs a frontal_image"),
    ({"shots": [{"prompt": "a", "duration": 4}], "model": "seedance-1.5-pro"}, "does not take shots"),
])
async def test_refused_before_submit(client: Client, cast: Path, sandbox: Any, args: dict[str, Any], message: str) -> None:
    text = await refused(client, "multi_shot_video", args)
    assert message in text
    assert sandbox.submission_count() == 0


async def test_shot_outputs_are_checked_before_submit(client: Client, cast: Path, sandbox: Any) -> None:
    for bad, words in (("../outside.mp4", "outside the project"), ("video/clips/shot-01.png", ".mp4")):
        text = await refused(client, "multi_shot_video", {"split": True, "shots": [
            {"prompt": "a", "duration": 3, "output": bad}, {"prompt": "b", "duration": 3}]})
        assert words in text
    assert sandbox.submission_count() == 0
