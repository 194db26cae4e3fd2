"""run_storyboard's next step repeats every argument it needs: followed literally, it does what was planned."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from aivp.demo import SAMPLE

from .conftest import ok

pytestmark = pytest.mark.anyio


def call_in(text: str) -> dict[str, Any]:
    """The arguments of the run_storyboard(...) call a next step names."""
    m = re.search(r"run_storyboard\((.*?)\)(?=[ .:]|$)", text)
    assert m, text
    tree = ast.parse(f"f({m[1]})", mode="eval").body
    assert isinstance(tree, ast.Call)
    return {k.arg: ast.literal_eval(k.value) for k in tree.keywords if k.arg}


async def test_a_plan_with_redo_and_stages_names_the_run_that_redoes_it(client: Client, project: Path,
                                                                        sandbox: Any) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    first = await ok(client, "run_storyboard", {"mode": "run", "shots": ["1"], "stages": ["keyframes"], "wait_s": 60})
    assert first["status"] == "done" and sandbox.submission_count() == 1
    frame = project / "image/frames/shot-01-ff.png"
    before = frame.stat().st_mtime_ns
    idle = await ok(client, "run_storyboard", {"mode": "plan", "shots": ["1"], "stages": ["keyframes"]})
    assert "nothing is left to make" in idle["next_step"] and "redo=" in idle["next_step"]
    plan = await ok(client, "run_storyboard", {"mode": "plan", "shots": ["1"], "stages": ["keyframes"],
                                               "redo": ["1"]})
    args = call_in(plan["next_step"])
    assert args == {"mode": "run", "shots": ["1"], "stages": ["keyframes"], "redo": ["1"]}
    run = await ok(client, "run_storyboard", {**args, "wait_s": 60})  # exactly what the plan said
    assert run["status"] == "done" and sandbox.submission_count() == 2
    assert frame.stat().st_mtime_ns != before  # the new take replaced it
    assert "redo" not in run["next_step"]


async def test_every_argument_that_shapes_the_plan_is_repeated(client: Client, project: Path, sandbox: Any) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    given = {"shots": ["2.1", "2.2"], "stages": ["clips"], "video_model": "kling-v3-pro", "multi_shot": True,
             "overrides": {"2.2": {"audio": False}}, "audio": True, "resolution": "720p", "concurrency": 2}
    plan = await ok(client, "run_storyboard", {"mode": "plan", **given})
    assert call_in(plan["next_step"]) == {"mode": "run", **given}
    assert sandbox.submission_count() == 0


async def test_a_plan_that_cannot_run_says_so_not_that_all_is_done(client: Client, project: Path, sandbox: Any) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    plan = await ok(client, "run_storyboard", {"mode": "plan", "shots": ["1"], "stages": ["clips"],
                                               "overrides": {"1": {"model": "nano-banana-pro"}}})
    clip = next(s for s in plan["steps"] if s["kind"] == "clip")
    assert clip["status"] == "invalid" and "makes image, not video" in clip["error"]
    assert "cannot run as asked" in plan["next_step"] and "nothing is left" not in plan["next_step"]
    assert call_in(plan["next_step"]) == {"mode": "plan", "shots": ["1"], "stages": ["clips"],
                                          "overrides": {"1": {"model": "nano-banana-pro"}}}
