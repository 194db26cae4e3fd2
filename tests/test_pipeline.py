"""run_storyboard on the sample storyboard against the sandbox: plan, run, rerun, crash, one failing shot."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from aivp.app import build_server
from aivp.demo import SAMPLE

from .conftest import make_settings, ok, refused

pytestmark = pytest.mark.anyio

FRAMES = ["shot-01-ff", "shot-02-ff", "shot-02-lf", "shot-03-ff", "shot-04-ff", "shot-05-ff", "shot-06-ff", "shot-06-lf"]
PORTRAITS = [f"{c}-{v}" for c in ("mara", "theo") for v in ("front", "side", "back")]


@pytest.fixture
def story(project: Path) -> Path:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    return project


def plan_rows(path: Path) -> dict[str, str]:
    rows = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[2].startswith("`"):
            rows[cells[2].strip("`")] = cells[5]
    return rows


async def test_plan_spends_nothing_and_lists_every_step(client: Client, story: Path, sandbox: Any) -> None:
    plan = await ok(client, "run_storyboard", {"mode": "plan"})
    kinds = [s["kind"] for s in plan["steps"]]
    assert kinds.count("portrait") == 6 and kinds.count("location") == 2 and kinds.count("keyframe") == 8
    assert kinds.count("clip") == 6 and plan["status"] == "planned" and plan["problems"] == []
    frames = [s for s in plan["steps"] if s["kind"] == "keyframe"]
    assert all(s["waits_for"] for s in frames)  # portraits/locations first
    assert kinds.index("portrait") < kinds.index("keyframe") < kinds.index("clip")
    clip2 = next(s for s in plan["steps"] if s["key"] == "clip:02")
    assert clip2["mode"] == "FLF" and "frame:02:last" in clip2["waits_for"]
    assert plan["estimate_usd"] == pytest.approx(sum(s["estimate_usd"] for s in plan["steps"]))
    assert sandbox.stats()["requests"] == 0 and not (story / "image").exists() and not (story / "video").exists()


@pytest.mark.slow
async def test_run_makes_every_file_then_a_second_run_submits_nothing(client: Client, story: Path, sandbox: Any) -> None:
    seen: list[str] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    run = await ok(client, "run_storyboard", {"mode": "run", "multi_shot": True, "wait_s": 60}, progress_callback=on_progress)
    assert run["status"] == "done", [s for s in run["steps"] if s["status"] != "done"]
    for stem in PORTRAITS:
        assert (story / f"image/characters/{stem}.png").is_file()
    for stem in FRAMES:
        assert (story / f"image/frames/{stem}.png").is_file()
    for n in range(1, 7):
        assert (story / f"video/clips/shot-{n:02d}.mp4").is_file()
    video_rows = plan_rows(story / "video/plan.md")
    assert {k: v for k, v in video_rows.items() if "shot-" in k} == {f"video/clips/shot-{n:02d}.mp4": "done" for n in range(1, 7)}
    assert set(plan_rows(story / "image/plan.md").values()) == {"done"}
    assert any(re.search(r"shot 0\d", m) for m in seen)
    first = sandbox.submission_count()
    assert first == 20  # 6 portraits + 2 locations + 8 keyframes + 3 clips + 1 multi-shot group
    group = next(s for s in sandbox.submissions if "kling-video/o3" in s.endpoint)
    assert len(group.payload["multi_prompt"]) == 3 and len(group.payload["elements"]) == 2
    again = await ok(client, "run_storyboard", {"mode": "run", "multi_shot": True, "wait_s": 30})
    assert again["status"] == "done" and sandbox.submission_count() == first
    assert all(s["status"] == "exists" for s in again["steps"])
    status = await ok(client, "run_storyboard", {"mode": "status"})
    assert [s["status"] for s in status["shots"]] == ["done"] * 6
    plan = await ok(client, "run_storyboard", {"mode": "plan"})  # without multi_shot: still what made the files
    made = {s["key"]: (s["model"], s["mode"]) for s in plan["steps"]}
    assert made["clip:03"] == ("kling-o3-pro", "MULTI") and made["clip:01"][1] in ("I2V", "FLF")


@pytest.mark.slow
async def test_killed_midway_restart_completes_without_paying_twice(story: Path, sandbox: Any) -> None:
    sandbox.configure(image_s=0.6, video_s=1.5)
    settings = make_settings(story, sandbox)
    async with Client(build_server(settings)) as c:
        await ok(c, "run_storyboard", {"mode": "run", "wait_s": 0.1})
        with anyio.fail_after(20):
            while sandbox.submission_count() < 8:  # part of the run is out, part is not
                await anyio.sleep(0.05)
    # leaving the client stops the server: the run and its jobs stop following, the ledger keeps them
    assert not (story / "video/clips/shot-06.mp4").exists()
    async with Client(build_server(settings)) as c:
        run = await ok(c, "run_storyboard", {"mode": "run", "wait_s": 90})
        while run["status"] == "running":
            run = await ok(c, "run_storyboard", {"mode": "run", "wait_s": 30})
    assert run["status"] == "done"
    endpoints_by_prompt: dict[str, int] = {}
    for s in sandbox.submissions:
        key = repr(sorted((k, str(v)) for k, v in s.payload.items() if k in ("prompt", "image_url", "image_urls")))
        endpoints_by_prompt[key] = endpoints_by_prompt.get(key, 0) + 1
    assert max(endpoints_by_prompt.values()) == 1, "a step was submitted twice"
    assert sandbox.submission_count() == 22  # 6 + 2 + 8 + 6 clips (no multi-shot in this run)


@pytest.mark.slow
async def test_one_refused_shot_fails_with_its_reason_and_the_rest_finish(client: Client, story: Path, sandbox: Any) -> None:
    shot = story / "storyboard/storyboard-final/shots/shot-04.md"
    text = shot.read_text(encoding="utf-8")
    shot.write_text(re.sub(r"(```[^\n]*\n)", r"\1[sandbox:unsafe] ", text), encoding="utf-8")
    run = await ok(client, "run_storyboard", {"mode": "run", "wait_s": 60})
    assert run["status"] == "partial"
    by_number = {s["number"]: s for s in run["shots"]}
    assert by_number[4]["status"] == "failed" and "content checker" in by_number[4]["error"]
    assert all(by_number[n]["status"] == "done" for n in (1, 2, 3, 5, 6))
    assert plan_rows(story / "video/plan.md")["video/clips/shot-04.mp4"] == "failed"
    assert not (story / "video/clips/shot-04.mp4").exists()
    # fix it and run again: only the failed shot is submitted
    shot.write_text(text, encoding="utf-8")
    before = sandbox.submission_count()
    again = await ok(client, "run_storyboard", {"mode": "run", "wait_s": 60})
    assert again["status"] == "done" and sandbox.submission_count() == before + 1


async def test_shot_selection_overrides_and_budget(project: Path, story: Path, sandbox: Any) -> None:
    settings = make_settings(story, sandbox, budget_usd=1.0, sandboxes=())  # the sandbox as a paid provider
    async with Client(build_server(settings)) as c:
        plan = await ok(c, "run_storyboard", {"mode": "plan", "shots": ["1"], "hero_shots": ["1"],
                                              "overrides": {"1": {"duration": 8}}})
        clip = next(s for s in plan["steps"] if s["kind"] == "clip")
        assert clip["model"] == "kling-v3-pro" and "hero" in clip["note"]
        assert {s["key"] for s in plan["steps"]} == {"portrait:mara:front", "portrait:mara:side", "portrait:mara:back",
                                                     "location:lighthouse-stairwell", "frame:01:first", "clip:01"}
        text = await refused(c, "run_storyboard", {"mode": "run"})
        assert "budget" in text and "Nothing was sent" in text
        text = await refused(c, "run_storyboard", {"mode": "plan", "shots": ["9"]})
        assert "no shot '9'" in text and "1 (1.1)" in text
        text = await refused(c, "run_storyboard", {"mode": "plan", "video_model": "nope"})
        assert "Unknown model" in text
    assert sandbox.submission_count() == 0


async def test_problems_are_reported_and_the_rest_still_plans(client: Client, story: Path) -> None:
    shot = story / "storyboard/storyboard-final/shots/shot-03.md"
    shot.write_text(shot.read_text(encoding="utf-8").replace("@Theo", "@Nobody", 1), encoding="utf-8")
    plan = await ok(client, "run_storyboard", {"mode": "plan"})
    assert any("Nobody" in p["message"] and p["file"].endswith("shot-03.md") and p["line"] for p in plan["problems"])
    assert len(plan["shots"]) == 6


async def test_free_slots_go_to_the_longest_chain_first() -> None:
    from aivp.pipeline.plan import Step
    from aivp.pipeline.run import PrioritySlots, chain_lengths

    def step(key: str, deps: list[str]) -> Step:
        return Step(key, "keyframe", lambda state: None, [key], deps, [], "image")  # type: ignore[arg-type,return-value]

    steps = {"portrait": step("portrait", []), "frame": step("frame", ["portrait"]), "clip": step("clip", ["frame"]),
             "lone-clip": step("lone-clip", [])}
    assert chain_lengths(steps) == {"portrait": 3, "frame": 2, "clip": 1, "lone-clip": 1}
    slots = PrioritySlots(1)
    await slots.acquire((0, 0))
    got: list[str] = []

    async def want(name: str, priority: tuple[int, int]) -> None:
        await slots.acquire(priority)
        got.append(name)
        slots.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(want, "clip", (-1, 3))
        tg.start_soon(want, "keyframe", (-2, 1))
        tg.start_soon(want, "portrait", (-3, 0))
        await anyio.wait_all_tasks_blocked()  # all three are waiting for the one slot
        slots.release()
    assert got == ["portrait", "keyframe", "clip"]


async def test_a_run_over_the_aivp_toml_budget_is_refused_whole(paid_client: Client, story: Path, sandbox: Any) -> None:
    (story / "aivp.toml").write_text("budget_usd = 2\n")
    text = await refused(paid_client, "run_storyboard", {"mode": "run"})
    assert "budget" in text and "Nothing was sent" in text and "$2.00" in text
    assert sandbox.submission_count() == 0
    status = await ok(paid_client, "queue_status", {})
    assert status["budget_usd"] == 2


@pytest.mark.slow
async def test_redo_of_a_dialogue_scene_replaces_its_shot_clips(client: Client, story: Path, sandbox: Any) -> None:
    first = await ok(client, "run_storyboard", {"mode": "run", "multi_shot": True, "wait_s": 60})
    assert first["status"] == "done"
    before = {n: (story / f"video/clips/shot-0{n}.mp4").stat().st_mtime_ns for n in (3, 4, 5)}
    count = sandbox.submission_count()
    again = await ok(client, "run_storyboard", {"mode": "run", "multi_shot": True, "redo": ["2.2"], "wait_s": 60})
    assert again["status"] == "done"
    assert sandbox.submission_count() == count + 2  # shot 2.2's keyframe and its scene's group, nothing else
    for n in (3, 4, 5):
        assert (story / f"video/clips/shot-0{n}.mp4").stat().st_mtime_ns != before[n]
    assert not list((story / "video/clips").glob("shot-0?-2.mp4"))
