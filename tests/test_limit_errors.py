"""Limit errors name the way out: the nearest value the model takes and curated models that can do what was
asked; every model they name really does it (a dry run with it passes). And a model's reason says whether the
caller named it or aivp filled in a default."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from aivp.catalog import catalog, effective_params
from aivp.demo import SAMPLE

from .conftest import ok, png, refused

pytestmark = pytest.mark.anyio


def named(text: str, lead: str) -> list[str]:
    """The catalog ids an error names after `lead`, in order."""
    assert lead in text, text
    tail = text.split(lead, 1)[1].split(". ", 1)[0].rstrip(".")
    found = [(hit.start(), m.id) for m in catalog().models
             if (hit := re.search(rf"(?<![\w.-]){re.escape(m.id)}(?![\w.-])", tail))]
    return [m for _, m in sorted(found)]


def longest_clip(task: str, exclude: str) -> float:
    """The longest clip any other active curated model makes for the task, read from the catalog."""
    best = 0.0
    for m in catalog().models:
        if not m.active or m.kind != "video" or m.id == exclude:
            continue
        for e in m.endpoints:
            if task not in e.tasks:
                continue
            for r in e.routes:
                for p in effective_params(m, e, r).values():
                    if p.role == "duration":
                        listed = [float(str(v).rstrip("s")) for v in p.values or [] if str(v).rstrip("s").isdigit()]
                        best = max(best, *listed, p.max or 0)
    return best


async def test_a_clip_too_long_for_every_model_names_the_longest_ones(client: Client, sandbox: Any) -> None:
    text = await refused(client, "generate_video", {"prompt": "a storm", "model": "seedance-1.5-pro", "duration": 25,
                                                    "dry_run": True})
    assert "makes clips of 4s to 12s; 25s is not one of them" in text
    assert "Nearest it makes: duration=12." in text
    longest = named(text, "No curated model makes 25s in one t2v clip; the longest: ")
    top = longest_clip("t2v", "seedance-1.5-pro")
    assert len(longest) == 3 and "seedance-1.5-pro" not in longest
    for model in longest:  # each is one of the longest, and makes that length
        assert f"{model} (" in text and f"to {top:g}s)" in text
        job = await ok(client, "generate_video", {"prompt": "a storm", "model": model, "duration": top, "dry_run": True})
        assert job["status"] == "estimate"
    assert "several shorter clips" in text and sandbox.submission_count() == 0


async def test_a_length_other_models_make_names_them_and_they_take_it(client: Client, sandbox: Any) -> None:
    text = await refused(client, "generate_video", {"prompt": "a storm", "model": "seedance-1.5-pro", "duration": 14,
                                                    "dry_run": True})
    assert "Nearest it makes: duration=12." in text
    others = named(text, "Models that make 14s clips (t2v): ")
    assert 1 <= len(others) <= 3
    for model in others:
        job = await ok(client, "generate_video", {"prompt": "a storm", "model": model, "duration": 14, "dry_run": True})
        assert job["model"] == model
    text = await refused(client, "generate_video", {"prompt": "a storm", "model": "veo-3.1", "duration": 5,
                                                    "dry_run": True})
    assert "4s, 6s, 8s; 5s is not one of them" in text and "Nearest it makes: duration=6." in text


@pytest.mark.parametrize(("model", "arg", "value", "nearest"), [
    ("seedance-1.5-pro", "resolution", "4k", "resolution='1080p'"),
    ("veo-3.1", "aspect_ratio", "1:1", "aspect_ratio='16:9'"),
])
async def test_a_setting_the_model_lacks_names_nearest_and_models(client: Client, sandbox: Any, model: str, arg: str,
                                                                  value: str, nearest: str) -> None:
    text = await refused(client, "generate_video", {"prompt": "a storm", "model": model, arg: value, "dry_run": True})
    assert f"Nearest it takes: {nearest}." in text
    others = named(text, f"Models that take {arg}={value!r} (t2v): ")
    assert others and model not in others
    for other in others:
        job = await ok(client, "generate_video", {"prompt": "a storm", "model": other, arg: value, "dry_run": True})
        assert job["model"] == other


async def test_an_input_the_model_does_not_take_names_models_that_do(client: Client, project: Path,
                                                                     sandbox: Any) -> None:
    png(project / "image/frames/a.png")
    text = await refused(client, "generate_video", {"prompt": "a storm", "model": "hailuo-02-pro", "audio": True,
                                                    "image": "image/frames/a.png", "dry_run": True})
    assert "does not take audio" in text
    for other in named(text, "Models that take audio (i2v): "):
        job = await ok(client, "generate_video", {"prompt": "a storm", "model": other, "audio": True,
                                                  "image": "image/frames/a.png", "dry_run": True})
        assert job["request"]["generate_audio"] is True


async def test_an_input_another_endpoint_takes_names_that_endpoint(client: Client, project: Path,
                                                                    sandbox: Any) -> None:
    png(project / "image/frames/a.png")
    args = {"prompt": "a storm", "image": "image/frames/a.png", "references": ["image/frames/a.png"], "dry_run": True}
    text = await refused(client, "generate_video", {**args, "model": "kling-o3-pro"})
    pinned = re.search(r"Its reference-to-video endpoint takes references: model='([^']+)'", text)
    assert pinned, text
    job = await ok(client, "generate_video", {**args, "model": pinned[1]})
    assert job["endpoint"] == pinned[1]
    text = await refused(client, "generate_video", {"prompt": "a storm", "end_image": "image/frames/a.png",
                                                    "model": "seedance-1.5-pro", "dry_run": True})
    assert "An end frame goes with a start frame: pass image too" in text


async def test_too_many_references_names_models_that_take_them(client: Client, project: Path, sandbox: Any) -> None:
    refs = [str(png(project / f"image/refs/r{i}.png").relative_to(project)) for i in range(5)]
    text = await refused(client, "generate_image", {"prompt": "a collage", "model": "flux-2-flash", "references": refs,
                                                    "dry_run": True})
    assert "takes at most 4" in text
    others = named(text, "Models that take 5 reference images (edit): ")
    assert len(others) == 3 and all(f"{m} (up to" in text for m in others)  # a stated limit is named first
    for other in others:
        job = await ok(client, "generate_image", {"prompt": "a collage", "model": other, "references": refs,
                                                  "dry_run": True})
        assert job["model"] == other


async def test_shot_limits_say_when_no_model_can_and_what_to_do(client: Client, sandbox: Any) -> None:
    text = await refused(client, "multi_shot_video", {"shots": [{"prompt": f"s{i}", "duration": 3} for i in range(7)],
                                                      "dry_run": True})
    assert "at most 6 shots" in text and "No curated model takes 7 shots in one call (the most any takes: 6)" in text
    text = await refused(client, "multi_shot_video", {"shots": [{"prompt": "a", "duration": 9},
                                                                {"prompt": "b", "duration": 9}], "dry_run": True})
    assert "Shorten shots by 3 s or split them over two calls" in text and "the most any takes: 15 s" in text


async def test_a_too_small_custom_size_names_the_nearest_that_fits(client: Client, sandbox: Any) -> None:
    text = await refused(client, "generate_image", {"prompt": "x", "model": "gpt-image-2", "size": "100x100",
                                                    "dry_run": True})
    size = re.search(r"size='(\d+)x(\d+)'", text)
    assert size and int(size[1]) == int(size[2])
    job = await ok(client, "generate_image", {"prompt": "x", "model": "gpt-image-2", "size": f"{size[1]}x{size[2]}",
                                              "dry_run": True})
    assert job["status"] == "estimate"


async def test_the_reason_says_whether_the_model_was_named(client: Client, sandbox: Any) -> None:
    shots = [{"prompt": "The lamp turns.", "duration": 3}, {"prompt": "The beam sweeps the sea.", "duration": 4}]
    r = await client.call_tool("multi_shot_video", {"shots": shots, "dry_run": True})
    text = r.content[0].text
    assert "Model: kling-o3-pro, the multi-shot default" in text and "as requested" not in text
    r = await client.call_tool("multi_shot_video", {"shots": shots, "model": "kling-o3-standard", "dry_run": True})
    assert "Model: kling-o3-standard as requested" in r.content[0].text


async def test_storyboard_steps_say_which_default_made_them(client: Client, project: Path, sandbox: Any) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    seen: list[str] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    run = await ok(client, "run_storyboard", {"mode": "run", "shots": ["1"], "stages": ["locations"], "wait_s": 30},
                   progress_callback=on_progress)
    assert run["status"] == "done"
    assert any("queued (nano-banana-pro, the storyboard's image default)" in m for m in seen), seen
    assert not any("as requested" in m for m in seen)
    seen.clear()
    run = await ok(client, "run_storyboard", {"mode": "run", "shots": ["1"], "stages": ["keyframes"],
                                              "image_model": "flux-2-pro", "wait_s": 30}, progress_callback=on_progress)
    assert run["status"] == "done" and any("queued (flux-2-pro as requested)" in m for m in seen), seen
