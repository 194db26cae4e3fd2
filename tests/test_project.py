"""The project folder: one containment check, atomic no-clobber placement, plan tables people also edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from aivp.errors import InputFileError, PathOutsideProject
from aivp.project import Project, set_plan_row, slug


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    root = tmp_path / "p"
    (root / "image").mkdir(parents=True)
    (root / "image" / "a.png").write_bytes(b"x")
    (tmp_path / "outside.png").write_bytes(b"secret")
    return Project(root)


@pytest.mark.parametrize("bad", ["../outside.png", "image/../../outside.png", "file:///etc/passwd",
                                 "file:../outside.png", "ftp://host/x.png", "image/a.png\x00.txt"])
def test_reads_outside_refused(proj: Project, bad: str) -> None:
    with pytest.raises(PathOutsideProject):
        proj.input_path(bad)


def test_absolute_outside_refused_inside_allowed(proj: Project, tmp_path: Path) -> None:
    with pytest.raises(PathOutsideProject, match="outside the project"):
        proj.input_path(str(tmp_path / "outside.png"))
    assert proj.input_path(str(proj.root / "image" / "a.png")) == proj.root / "image" / "a.png"
    assert proj.input_path("image/a.png") == proj.root / "image" / "a.png"


def test_symlink_escape_refused(proj: Project, tmp_path: Path) -> None:
    (proj.root / "image" / "link.png").symlink_to(tmp_path / "outside.png")
    (proj.root / "dirlink").symlink_to(tmp_path)
    with pytest.raises(PathOutsideProject):
        proj.input_path("image/link.png")
    with pytest.raises(PathOutsideProject):
        proj.output_path("dirlink/new.png")


def test_state_dir_and_missing_files(proj: Project) -> None:
    (proj.root / ".aivp").mkdir()
    (proj.root / ".aivp" / "ledger.sqlite3").write_bytes(b"db")
    with pytest.raises(PathOutsideProject, match=".aivp"):
        proj.input_path(".aivp/ledger.sqlite3")
    with pytest.raises(InputFileError, match="does not exist"):
        proj.input_path("image/nope.png")
    with pytest.raises(InputFileError, match="not a regular file"):
        proj.input_path("image")


def test_extra_roots_read_only(tmp_path: Path) -> None:
    extra = tmp_path / "assets"
    extra.mkdir()
    (extra / "ref.png").write_bytes(b"x")
    p = Project(tmp_path / "p2", (extra,))
    (tmp_path / "p2").mkdir()
    assert p.input_path(str(extra / "ref.png")).name == "ref.png"
    with pytest.raises(PathOutsideProject):
        p.output_path(str(extra / "out.png"))


def test_place_never_clobbers(proj: Project) -> None:
    target = proj.root / "image" / "frames" / "shot-01-ff.png"
    placed = []
    for content in (b"one", b"two", b"three"):
        tmp = proj.temp_beside(target, "t")
        tmp.write_bytes(content)
        placed.append(proj.place(tmp, target))
        assert not tmp.exists()
    assert [p.name for p in placed] == ["shot-01-ff.png", "shot-01-ff-2.png", "shot-01-ff-3.png"]
    assert [p.read_bytes() for p in placed] == [b"one", b"two", b"three"]
    tmp = proj.temp_beside(target, "t")
    tmp.write_bytes(b"four")
    assert proj.place(tmp, target, overwrite=True) == target and target.read_bytes() == b"four"
    leftovers = [p.name for p in target.parent.iterdir() if p.name.endswith(".part")]
    assert leftovers == []


def test_slug_is_safe() -> None:
    assert slug("A woman in a red dress / on a cliff!") == "a-woman-in-a-red-dress-on-a-cliff"
    assert slug("雨の夜、ネオンの街") == "item"
    assert slug("../../etc/passwd") == "etc-passwd"
    assert len(slug("word " * 50)) <= 40


def test_plan_row_added_then_updated_keeping_what_people_wrote() -> None:
    text = ("# Video plan\r\n\r\nNotes by the director: keep shot 2 moody.\r\n\r\n"
            "| # | Type | File | Model | Mode | Status |\r\n|---|---|---|---|---|---|\r\n"
            "| 1 | shot-01 | `video/clips/shot-01.mp4` | `m` | I2V | done |\r\n"
            "| 2 | shot-02 | `video/clips/shot-02.mp4` | `m` | T2V | pending |\r\n\r\nMore notes.\r\n")
    out = set_plan_row(text, "video", "video/clips/shot-02.mp4", type_="shot-02", model="x", mode="I2V", status="done")
    assert "| 2 | shot-02 | `video/clips/shot-02.mp4` | `x` | I2V | done |" in out
    assert "keep shot 2 moody" in out and "More notes." in out and "| 1 | shot-01 |" in out
    assert "\r\n" in out and "\n" not in out.replace("\r\n", "")
    out2 = set_plan_row(out, "video", "video/clips/shot-03.mp4", type_="shot-03", model="x", mode="T2V", status="queued")
    lines = out2.split("\r\n")
    row3 = lines.index("| 3 | shot-03 | `video/clips/shot-03.mp4` | `x` | T2V | queued |")
    assert lines[row3 - 1].startswith("| 2 |") and lines[row3 + 1] == ""


def test_plan_created_when_missing() -> None:
    out = set_plan_row("", "image", "image/frames/shot-01-ff.png", type_="shot-01-ff", model="m", mode="T2I", status="done")
    assert out.startswith("# Image plan") and "| 1 | shot-01-ff | `image/frames/shot-01-ff.png` |" in out


def test_write_json_atomic(proj: Project) -> None:
    path = proj.write_json(proj.root / "image" / "log" / "a.json", {"a": 1})
    assert path.read_text().strip() == '{\n  "a": 1\n}'
    assert not any(p.name.endswith(".tmp") for p in path.parent.iterdir())


def test_hidden_files_are_never_read_or_written(proj: Project) -> None:
    (proj.root / ".env").write_text("FAL_KEY=abc:def\n")
    (proj.root / ".git").mkdir()
    (proj.root / ".git" / "config").write_text("x")
    for bad in (".env", "./.env", "image/../.env", ".git/config", str(proj.root / ".env")):
        with pytest.raises(PathOutsideProject, match="hidden"):
            proj.input_path(bad)
    with pytest.raises(PathOutsideProject, match="hidden"):
        proj.output_path(".env")
    (proj.root / "image" / "secret-link.png").symlink_to(proj.root / ".env")
    with pytest.raises(PathOutsideProject, match="hidden"):
        proj.input_path("image/secret-link.png")
