"""A clip meant to carry dialogue gets sound where its model can voice it, unless the caller says audio=false;
the reason says so and what it adds to the price."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from aivp.catalog import resolve
from aivp.catalog.params import build, choose_endpoint
from aivp.demo import SAMPLE
from aivp.domain.dialogue import audio_note, has_dialogue

from .conftest import ok

pytestmark = pytest.mark.anyio

SPOKEN = '[Mara, low]: "Then she\'ll steer by ours." She turns to the lens.'


@pytest.mark.parametrize(("prompt", "spoken"), [
    (SPOKEN, True),
    ('Theo: "What light?" He throws up his hands.', True),
    ('She looks up and says "Hold the light steady."', True),
    ('女人平静地说："Then she\'ll steer by ours."', True),
    ('A neon sign that reads "OPEN" flickers in the rain.', False),
    ("A lighthouse in a storm, waves breaking.", False),
])
def test_what_counts_as_dialogue(prompt: str, spoken: bool) -> None:
    assert has_dialogue(prompt) is spoken


async def test_generate_video_voices_quoted_dialogue_unless_told_not_to(client: Client, sandbox: Any) -> None:
    r = await client.call_tool("generate_video", {"prompt": SPOKEN, "model": "kling-o3-pro", "dry_run": True})
    assert r.structured_content["request"]["generate_audio"] is True
    assert "audio on for dialogue" in r.content[0].text and "audio=false" in r.content[0].text
    off = await ok(client, "generate_video", {"prompt": SPOKEN, "model": "kling-o3-pro", "audio": False,
                                              "dry_run": True})
    assert off["request"]["generate_audio"] is False
    quiet = await client.call_tool("generate_video", {"prompt": "A lighthouse in a storm.", "model": "kling-o3-pro",
                                                      "dry_run": True})
    assert "generate_audio" not in quiet.structured_content["request"]  # the model's default (off) stays
    assert "audio on" not in quiet.content[0].text
    native = await client.call_tool("generate_video", {"prompt": SPOKEN, "model": "veo-3.1", "dry_run": True})
    assert "generate_audio" not in native.structured_content["request"] and "audio on" not in native.content[0].text
    options = await ok(client, "generate_video", {"prompt": SPOKEN, "model": "kling-o3-pro", "dry_run": True,
                                                  "options": {"generate_audio": False}})
    assert options["request"]["generate_audio"] is False  # set in options: the caller's choice
    assert sandbox.submission_count() == 0


def test_the_note_shows_what_sound_adds_to_the_price() -> None:
    found = resolve("kling-v2.6-pro")
    endpoint = choose_endpoint(found.model, "t2v")
    built = build(found.model, endpoint, endpoint.routes[0], {"prompt": SPOKEN, "audio": True, "duration": 10})
    assert audio_note(built) == "audio on for dialogue (+$0.700; audio=false to save)"  # $0.14/s on, $0.07/s off
    found = resolve("kling-o3-pro")
    endpoint = choose_endpoint(found.model, "t2v")
    built = build(found.model, endpoint, endpoint.routes[0], {"prompt": SPOKEN, "audio": True})
    assert "no extra cost" in audio_note(built)


async def test_multi_shot_dialogue_is_voiced_by_default(client: Client, sandbox: Any) -> None:
    shots = [{"prompt": '[Theo, urgent]: "Mara! A trawler is lost."', "duration": 5},
             {"prompt": "She climbs through the hatch.", "duration": 4}]
    r = await client.call_tool("multi_shot_video", {"shots": shots, "dry_run": True})
    assert r.structured_content["request"]["generate_audio"] is True
    assert "kling-o3-pro, the multi-shot default; audio on for dialogue" in r.content[0].text
    off = await ok(client, "multi_shot_video", {"shots": shots, "audio": False, "dry_run": True})
    assert off["request"]["generate_audio"] is False
    silent = await ok(client, "multi_shot_video", {"shots": [{"prompt": "The lamp turns.", "duration": 3},
                                                             {"prompt": "Waves.", "duration": 3}], "dry_run": True})
    assert "generate_audio" not in silent["request"]


async def test_the_storyboard_voices_its_dialogue_scene(client: Client, project: Path, sandbox: Any) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    plan = await ok(client, "run_storyboard", {"mode": "plan", "multi_shot": True})
    group = next(s for s in plan["steps"] if s["kind"] == "group")
    assert group["model"] == "kling-o3-pro" and "audio on for dialogue" in group["note"]
    silent = next(s for s in plan["steps"] if s["key"] == "clip:01")  # no dialogue: nothing added
    assert "audio on" not in silent["note"]
    off = await ok(client, "run_storyboard", {"mode": "plan", "multi_shot": True, "audio": False})
    assert all("audio on" not in s["note"] for s in off["steps"])
    hero = await ok(client, "run_storyboard", {"mode": "plan", "shots": ["2.2"], "stages": ["clips"],
                                               "video_model": "kling-o3-standard"})
    clip = next(s for s in hero["steps"] if s["kind"] == "clip")  # a single dialogue shot on a model whose sound is off
    assert "audio on for dialogue" in clip["note"]
    assert sandbox.submission_count() == 0
