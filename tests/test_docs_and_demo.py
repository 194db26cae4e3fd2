"""The docs stay true: the generated model reference, README commands and settings, skills naming real tools; the demo runs."""

from __future__ import annotations

import os
import re
import json
from pathlib import Path

import anyio
import pytest
from mcp import Client

from aivp.app import build_server
from aivp.catalog import catalog, docs
from aivp.settings import VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[1]


def test_models_reference_is_generated_from_the_catalog() -> None:
    assert docs.stale(ROOT / "references") == [], "run: aivp models --markdown references/"


def test_models_reference_is_split_into_files_read_in_one_go() -> None:
    files = docs.render_all()
    assert set(files) == {"models.md", *(p.file for p in docs.PARTS)}
    for name, text in files.items():
        assert len(text) < 40_000, (name, len(text))  # one resource read, well under a host's result limit
    index = files["models.md"]
    for m in catalog().models:  # every model has its line in the index and its card in exactly one file
        assert f"| `{m.id}` |" in index, m.id
        holding = [p for p in docs.PARTS if f"(`{m.id}`)\n" in files[p.file]]
        assert holding == [docs.part_of(m)], (m.id, holding)
    for part in docs.PARTS:
        assert f"`{part.uri}`" in index


def test_models_check_names_stale_missing_and_leftover_files(tmp_path: Path) -> None:
    for name, text in docs.render_all().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert docs.stale(tmp_path) == [] and docs.folder_of(tmp_path / "models.md") == tmp_path
    (tmp_path / "models-video.md").write_text("old", encoding="utf-8")
    (tmp_path / "models-kling.md").unlink()
    (tmp_path / "models-audio.md").write_text(docs.HEADER + "# gone\n", encoding="utf-8")
    (tmp_path / "models-notes.md").write_text("# written by a person\n", encoding="utf-8")
    problems = "\n".join(docs.stale(tmp_path))
    assert "models-video.md is stale" in problems and "models-kling.md is missing" in problems
    assert "models-audio.md is a generated file" in problems and "models-notes.md" not in problems


def test_readme_setup_commands_exist_and_ci_runs_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("./scripts/demo", "./scripts/test"):
        assert f"```\n{command}\n```" in readme, f"README must show {command} verbatim"
        assert os.access(ROOT / command, os.X_OK)
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert "./scripts/test" in ci and os.access(ROOT / ".ci/run", os.X_OK)
    assert "exit 5" in (ROOT / "scripts/test").read_text() or '-eq 5' in (ROOT / "scripts/test").read_text()


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in VARIABLES if f"`{name}`" not in readme and name not in readme]
    assert missing == []


def test_skill_and_readme_name_every_tool(tmp_path: Path) -> None:
    async def names() -> set[str]:
        async with Client(build_server(Settings.from_env({}, project_dir=tmp_path))) as c:
            return {t.name for t in (await c.list_tools()).tools}

    tools = anyio.run(names)
    skill = (ROOT / "SKILL.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in tools:
        assert f"`{name}`" in readme and name in skill, name
    mentioned = set(re.findall(r"\b(generate_\w+|edit_\w+|queue_\w+|cancel_\w+|search_\w+|upload_\w+|multi_shot_\w+|run_\w+)\(", skill))
    assert mentioned <= tools | {"multi_shot_video", "run_storyboard"}, mentioned - tools


def test_storyboard_prompt_plans_before_it_runs(tmp_path: Path) -> None:
    async def prompt() -> tuple[set[str], str, str]:
        async with Client(build_server(Settings.from_env({}, project_dir=tmp_path))) as c:
            names = {p.name for p in (await c.list_prompts()).prompts}
            default = await c.get_prompt("storyboard_to_clips")
            chosen = await c.get_prompt("storyboard_to_clips", {"multi_shot": "yes", "shots": "2, 1.3"})
            texts = ["\n".join(m.content.text for m in r.messages) for r in (default, chosen)]  # type: ignore[union-attr]
            return names, texts[0], texts[1]

    names, default, chosen = anyio.run(prompt)
    assert {"animate_keyframe", "character_sheet", "storyboard_to_clips"} <= names
    for text in (default, chosen):
        assert "run_storyboard(mode='plan'" in text and "run_storyboard(mode='run'" in text
        assert text.index("mode='plan'") < text.index("mode='run'") and "mode='status'" in text
    assert "multi_shot" not in default and "shots=" not in default
    assert "multi_shot=true, shots=['2', '1.3']" in chosen


@pytest.mark.slow
def test_demo_runs_the_sample_storyboard_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aivp.demo import run_demo

    root = tmp_path / "demo"
    assert run_demo(root) == 0
    out = capsys.readouterr().out
    for rel in ("image/characters/mara-front.png", "image/characters/theo-back.png", "image/locations/lantern-room.png",
                "image/frames/shot-02-lf.png", "video/clips/shot-01.mp4", "video/clips/shot-06.mp4",
                "video/clips/group-01.mp4", "video/log/group-01.json", "video/plan.md", "image/plan.md"):
        assert (root / rel).is_file(), rel
        assert rel in out
    assert "0 new submission(s)" in out and "would have cost about $" in out
    plan = (root / "video/plan.md").read_text()
    assert plan.count("| done |") == 7 and "failed" not in plan
    # terse off a terminal: one line per finished step, no queue positions; the group's paths whole
    assert "position" not in out and len(out.splitlines()) < 120
    for rel in ("video/clips/shot-03.mp4", "video/clips/shot-04.mp4", "video/clips/shot-05.mp4"):
        assert any(line.split()[-1:] == [rel] or f" {rel} " in line for line in out.splitlines()), rel
    for n in (3, 4, 5):  # a clip cut from the group is decoded through like any other
        record = json.loads((root / f"video/log/shot-0{n}.json").read_text())
        assert record["output"]["check"]["ok"] is True and record["group"]["file"] == "video/clips/group-01.mp4"
