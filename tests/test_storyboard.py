"""The storyboard reader: the shipped sample, messy copies of it, broken files, ordering and grouping."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import aivp.storyboard as storyboard
import pytest
from aivp.errors import InputFileError
from aivp.storyboard import (
    Character,
    DialogueLine,
    FrameRef,
    FrameSpec,
    Problem,
    Shot,
    ShotCharacter,
    Storyboard,
    load_storyboard,
    sample_path,
)
from aivp.storyboard.order import with_keyframe_order
from aivp.storyboard.values import parse_duration, parse_ref, parse_size

SAMPLE = sample_path()
FINAL = "storyboard/storyboard-final"
SHOTS = f"{FINAL}/shots"
PLAN = f"{FINAL}/frame-plan.md"
PLAN_ORDER = [("1.1", "first"), ("2.1", "first"), ("1.2", "first"), ("2.2", "first"), ("2.3", "first"),
              ("2.4", "first"), ("1.2", "last"), ("2.4", "last")]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A writable copy of the sample project."""
    root = tmp_path / "lighthouse"
    shutil.copytree(SAMPLE, root)
    return root


def edit(root: Path, rel: str, old: str, new: str) -> int:
    """Replace `old` (which must be there) in a project file; return the 1-based line where it was."""
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return line


def order_ids(sb: Storyboard) -> list[tuple[str, str]]:
    return [(s.id, kind) for s, kind in sb.keyframe_order()]


# ------------------------------------------------------------------ the shipped sample


def test_sample_loads_with_no_problems_and_the_expected_shape() -> None:
    sb = load_storyboard(SAMPLE)
    assert sb.problems == []
    assert [(s.number, s.id, s.scene) for s in sb.shots] == [
        (1, "1.1", "lighthouse-stairwell"), (2, "1.2", "lighthouse-stairwell"), (3, "2.1", "lantern-room"),
        (4, "2.2", "lantern-room"), (5, "2.3", "lantern-room"), (6, "2.4", "lantern-room")]
    assert sorted(sb.characters) == ["mara", "theo"]
    assert sorted(sb.scenes) == ["lantern-room", "lighthouse-stairwell"]
    assert sb.project == "The Lighthouse Keeper"
    assert len(sb.frame_plan) == 8
    assert [s.id for s in sb.shots if s.needs_last_frame] == ["1.2", "2.4"]
    assert all(s.variation == "large" and set(s.frames) == {"first", "last"} for s in sb.shots if s.needs_last_frame)
    assert [s.id for s in sb.shots if len(s.characters) == 1] == ["1.1", "1.2"]
    assert [s.id for s in sb.shots if s.has_dialogue] == ["1.2", "2.1", "2.2", "2.3"]
    assert [[s.id for s in g] for g in sb.groups()] == [["2.1", "2.2", "2.3"]]
    assert sum(s.duration_s or 0 for s in sb.groups()[0]) <= 15  # fits one Kling O3 multi-shot call
    assert order_ids(sb) == PLAN_ORDER  # the frame plan's order, not shot order
    for s in sb.shots:
        assert s.duration_s is not None and 4 <= s.duration_s <= 8
        assert set(s.motion) == {"seedance", "kling"}
        assert all(m.aspect_ratio == "16:9" and m.duration_s == s.duration_s for m in s.motion.values())
        assert all((f.width, f.height, f.ratio) == (1920, 1080, "16:9") and f.prompt for f in s.frames.values())


def test_sample_shot_fields_are_typed_and_prompts_kept_exactly() -> None:
    sb = load_storyboard(SAMPLE)
    shot = sb.shot("2.3")
    assert (shot.number, shot.title, shot.file) == (5, "Shot 2.3", f"{SHOTS}/shot-05.md")
    assert (shot.camera, shot.camera_id, shot.shot_type, shot.angle) == ("cam_4 (MCU, eye-level)", "cam_4", "MCU", "eye-level")
    assert (shot.variation, shot.duration_s, shot.is_primary) == ("small", 5.0, True)
    assert shot.characters == [ShotCharacter("Theo", True, True, "front", "camera"),
                               ShotCharacter("Mara", True, True, "back", "away from camera, foreground screen-right")]
    assert shot.dialogue == [
        DialogueLine("Theo", "What light? The generator's flooded, the lamp is dead.", "panicked"),
        DialogueLine("Mara", "Then we turn it by hand.", "dry, almost smiling")]
    assert sorted(shot.audio) == ["bgm", "dialogue", "sfx"]
    assert shot.last_frame_text is None  # "(small variation — not required)"
    assert shot.first_frame_text and "\nthe screen-right foreground" in shot.first_frame_text  # line breaks kept
    seedance, kling = shot.motion["seedance"], shot.motion["kling"]
    assert seedance.text.startswith("【整体描述】\n电影写实风格，5秒") and "@图片1 作为首帧画面" in seedance.text
    assert kling.text.startswith("[Camera: static, medium close-up") and kling.text.endswith("(Duration: 5s)")
    assert (kling.input_frames, kling.camera_fixed) == ("first", True)
    first = shot.frames["first"]
    assert first.mode == "image-to-image"
    assert first.references == [
        FrameRef("frame", "Shot 2.1 first-frame — spatial reference (parent cam_2; reverse angle toward the radio desk)",
                 shot="2.1", frame="first"),
        FrameRef("character", "@Theo front portrait — face, glasses and curls", name="Theo", angle="front"),
        FrameRef("character", "@Mara back portrait — the braid down the yellow raincoat from behind", name="Mara", angle="back")]
    large = sb.shot(6)
    assert large.needs_last_frame and large.motion["kling"].input_frames == "first+last"
    assert large.motion["seedance"].camera_fixed is False
    assert large.last_frame_text and large.last_frame_text.startswith("Long shot at eye level, slightly closer")
    assert large.frame_path("last") == "image/frames/shot-06-lf.png" and large.clip_path == "video/clips/shot-06.mp4"


def test_every_sample_prompt_repeats_the_anchor_of_each_character_in_it() -> None:
    sb = load_storyboard(SAMPLE)
    mara = sb.character("@mara")
    assert mara.anchor and mara.anchor.startswith("Woman in her mid-sixties with a long silver braid")
    assert "yellow oilskin raincoat" in mara.anchor and not mara.anchor.startswith('"')
    assert mara.outfits == ["knee-length yellow oilskin raincoat over a grey fisherman's sweater, dark wool trousers, "
                            "black rubber boots"]  # "Alt outfits: none this episode" adds nothing
    assert len(sb.character("theo").outfits) == 2
    assert {"static features", "dynamic features", "voice profile", "multi-angle portrait guide"} <= set(mara.sections)
    assert "prompt anchor phrase" not in mara.sections
    assert mara.portrait("side") == "image/characters/mara-side.png"
    for shot in sb.shots:
        for spec in shot.frames.values():
            for name in shot.character_names:
                assert sb.character(name).anchor in (spec.prompt or ""), (shot.id, spec.kind, name)
    stairs = sb.scene("Lighthouse Stairwell")
    assert stairs.slug == "lighthouse-stairwell" and stairs.prompt and stairs.prompt.endswith("No people.")
    assert stairs.lighting and "storm lantern" in stairs.lighting


def test_a_character_built_in_code_is_found_by_every_spelling(tmp_path: Path) -> None:
    lin = Character(name="Lin Yue", slug="lin-yue", file="script/characters/lin-yue.md", anchor=None)
    sb = Storyboard(tmp_path, characters={"lin yue": lin})
    assert all(sb.character(n) is lin for n in ("@Lin Yue", "linyue", "lin_yue", "LIN-YUE"))
    assert sb.character("@lin") is None
    assert lin == replace(lin) and "aliases" not in repr(lin)


def test_frame_plan_entries() -> None:
    plan = load_storyboard(SAMPLE).frame_plan
    assert [(e.index, e.shot_id, e.kind, e.priority) for e in plan] == [
        (1, "1.1", "first", 1), (2, "2.1", "first", 1), (3, "1.2", "first", 2), (4, "2.2", "first", 2),
        (5, "2.3", "first", 2), (6, "2.4", "first", 2), (7, "1.2", "last", 3), (8, "2.4", "last", 3)]
    third = plan[2]
    assert (third.camera, third.parent, third.parent_shot, third.scene, third.mode) == (
        "cam_1 (MS, high-angle)", "cam_0 (Shot 1.1)", "1.1", "lighthouse-stairwell", "image-to-image")
    assert [(r.kind, r.name, r.angle, r.shot, r.frame) for r in third.references] == [
        ("frame", None, None, "1.1", "first"), ("character", "Mara", "front", None, None)]
    assert [(r.kind, r.name) for r in plan[0].references] == [("scene", "lighthouse-stairwell"), ("character", "Mara")]
    assert plan[0].notes == "The spatial anchor for both stairwell shots" and plan[2].notes is None


def test_lookups_accept_ids_numbers_stems_and_any_case() -> None:
    sb = load_storyboard(SAMPLE)
    assert sb.shot("2.1") is sb.shot(3) is sb.shot("3") is sb.shot("shot-03") is sb.shot("Shot 2.1")
    assert sb.character("@THEO") is sb.character("theo") is sb.characters["theo"]
    assert sb.scene("LANTERN ROOM") is sb.scene("lantern-room") is sb.scenes["lantern-room"]
    assert sb.shot("9.9") is None and sb.shot(99) is None and sb.character("Gulliver") is None and sb.scene("x") is None


def test_the_sample_ships_inside_the_package() -> None:
    package = Path(storyboard.__file__).resolve().parent.parent
    assert SAMPLE.is_relative_to(package) and (SAMPLE / SHOTS / "shot-01.md").is_file()
    assert set(storyboard.__all__) <= set(dir(storyboard))


# ------------------------------------------------------------------ the same storyboard, written messily


def reorder_sections(text: str, extra: str = "") -> str:
    """The `##` sections in reverse order, with an unknown section slipped in."""
    head, *sections = re.split(r"(?m)^(?=## )", text)
    sections = [s if s.endswith("\n\n") else s.rstrip("\n") + "\n\n" for s in reversed(sections)]
    if extra:
        sections.insert(1, extra)
    return head + "".join(sections)


def crlf_bom(text: str) -> str:
    return "\ufeff" + text.replace("\n", "\r\n")


def messy_shot(text: str) -> str:
    # the Kling block without its own parameters (the skill's template writes them once)
    head, _, kling = text.partition("### Kling 3.0 (Fallback)")
    text = head + "### Kling 3.0 (Fallback)" + kling[: kling.rindex("```") + 3] + "\n"
    text = re.sub(r"\*\*Duration\*\*: (\d+)s", r"**Duration:**   \1 s", text, count=1)
    text = text.replace("**Camera mode**: ", "**Camera mode**：")  # a full-width colon
    text = text.replace("1920×1080", "1920 x 1080")
    # metadata rows reversed, with bold, backticks, odd spacing and missing outer pipes
    meta = re.search(r"\|-------\|-------\|\n((?:\|.*\n)+)", text)
    assert meta
    rows = meta.group(1).splitlines()[::-1]
    rows = [re.sub(r"^\| Shot ID \| (\S+) \|$", r"|**Shot ID**|  `\1`", r) for r in rows]
    rows = [re.sub(r"^\| Duration \| (\d+)s \|$", r"Duration   |   \1 s   |", r) for r in rows]
    rows = [re.sub(r"^\| Variation \| (\w+) \|$", r"| Variation | **\1** |", r) for r in rows]
    rows = [re.sub(r"^\| Camera \| (cam_\d) (.*) \|$", r"| Camera |  `\1`    \2|", r) for r in rows]
    text = text.replace(meta.group(1), "\n".join(rows) + "\n")
    # the Characters table with its last two columns swapped
    out = []
    for line in text.split("\n"):
        cells = line.split("|")
        if len(cells) == 7 and ("@" in cells[1] or "Character" in cells[1] or "---" in cells[1]):
            cells[4], cells[5] = cells[5], cells[4]
        out.append("|".join(cells))
    extra = "## Director's Notes\n\n| Take | Note |\n|---|---|\n| 1 | the lamp flickers |\n\n> Not a prompt.\n\n"
    return crlf_bom(reorder_sections("\n".join(out), extra))


def messy_plan(text: str) -> str:
    """Sections reversed, and each entry's **Generation mode** bullet moved to the top."""
    entries = re.split(r"(?m)^(?=#### )", text)
    moved = []
    for entry in entries:
        mode = re.search(r"(?m)^- \*\*Generation mode\*\*.*\n", entry)
        if mode and entry.startswith("#### "):
            title, _, body = entry.partition("\n")
            entry = f"{title}\n{mode.group(0)}{body.replace(mode.group(0), '')}"
        moved.append(entry)
    return crlf_bom(reorder_sections("".join(moved), "## Revision Notes\n\n- Round 2: moved Frame 6 after Frame 5\n\n"))


def test_a_messy_copy_parses_to_the_same_data(copy: Path) -> None:
    original = load_storyboard(SAMPLE)
    for path in sorted((copy / SHOTS).glob("*.md")):
        path.write_bytes(messy_shot(path.read_text(encoding="utf-8")).encode("utf-8"))
    plan = copy / PLAN
    plan.write_bytes(messy_plan(plan.read_text(encoding="utf-8")).encode("utf-8"))
    for path in [*(copy / "script/characters").glob("*.md"), *(copy / "script/scenes").glob("*.md")]:
        extra = "" if "characters" in path.parts else "## Mood Board\n\n- grey, gold\n\n"
        path.write_bytes(crlf_bom(reorder_sections(path.read_text(encoding="utf-8"), extra)).encode("utf-8"))
    # a missing optional section: shot-04 without ## For aivp-video
    text = (copy / SHOTS / "shot-04.md").read_bytes().decode("utf-8")
    start = text.index("## For aivp-video")
    end = text.find("\r\n## ", start + 1)
    (copy / SHOTS / "shot-04.md").write_bytes((text[:start] + (text[end + 2 :] if end > 0 else "")).encode("utf-8"))

    messy = load_storyboard(copy)
    assert messy.problems == []
    sample_text = (SAMPLE / SHOTS / "shot-01.md").read_text(encoding="utf-8")
    assert "\r\n" in (copy / SHOTS / "shot-01.md").read_bytes().decode("utf-8") and "\r\n" not in sample_text
    no_video = messy.shot("2.2")
    assert no_video.motion == {} and no_video.has_dialogue and no_video.duration_s == 4.0
    assert messy.shots == [replace(s, motion={}) if s.id == "2.2" else s for s in original.shots]
    assert messy.characters == original.characters
    assert messy.scenes == original.scenes
    assert messy.frame_plan == original.frame_plan
    assert messy.project == original.project and order_ids(messy) == PLAN_ORDER


CHINESE_SHOT = """\ufeff# Shot 1.1\r
\r
## For aivp-image\r
\r
### Frame 1: first-frame\r
\r
**Prompt** (for image generation model):\r
> 雨夜的老街，霓虹倒映在湿漉漉的石板路上。\r
> 林悦，棕色卷发，红色围巾，深色长风衣，站在街角回头。\r
\r
**Reference images** (in priority order):\r
1. @林悦 front portrait — 面部细节\r
2. Scene: 雨夜老街 — 背景色调\r
\r
**Resolution**:  1280 x 720  (16:9)\r
\r
## Metadata\r
\r
Field|Value\r
--|--\r
Duration |5 秒\r
  |  Scene|雨夜老街|\r
|Camera|cam_0（CU，平视）|\r
| Emotion | ↑↑ （紧张） |\r
| Shot ID | 1.1 |\r
\r
## 备注\r
\r
这一节是多余的，应被忽略。\r
\r
## Characters\r
\r
| Character | First Frame | Last Frame | Portrait Angle | Facing |\r
|---|---|---|---|---|\r
| **@林悦** | visible | hidden | `side` | 画面右侧 |\r
\r
## Audio\r
\r
| Layer | Content |\r
|---|---|\r
| Dialogue | 林悦（低声）："别回头。" |\r
\r
## For aivp-video\r
\r
### Seedance 2.0 (Primary)\r
\r
```\r
【整体描述】\r
电影写实风格，5秒，16:9横屏\r
\r
【分镜描述】\r
0-5秒：@图片1 中的女人缓缓回头\r
```\r
\r
**Duration**: 5\r
**Aspect ratio**: 16：9\r
**Camera mode**：fixed\r
"""


def test_chinese_crlf_bom_and_odd_tables(tmp_path: Path) -> None:
    root = tmp_path / "雨夜"
    (root / "script/characters").mkdir(parents=True)
    (root / "script/scenes").mkdir(parents=True)
    (root / SHOTS).mkdir(parents=True)
    anchor = "林悦，棕色卷发，红色围巾，深色长风衣"
    sheet = f"# Character: 林悦\n\n## Prompt Anchor Phrase\n> {anchor}\n"
    (root / "script/characters/林悦.md").write_text(sheet, encoding="utf-8")
    (root / "script/scenes/rainy-street.md").write_text("# Scene: 雨夜老街\n\n## Scene Prompt\n> 雨夜的老街。No people.\n",
                                                        encoding="utf-8")
    (root / SHOTS / "shot-01.md").write_bytes(CHINESE_SHOT.encode("utf-8"))
    sb = load_storyboard(root)
    assert sb.problems == []
    shot = sb.shot("1.1")
    assert (shot.scene, shot.duration_s, shot.emotion) == ("rainy-street", 5.0, "↑↑ （紧张）")
    assert (shot.camera_id, shot.shot_type, shot.angle) == ("cam_0", "CU", "平视")
    assert shot.characters == [ShotCharacter("林悦", True, False, "side", "画面右侧")]
    assert shot.dialogue == [DialogueLine("林悦", "别回头。", "低声")]
    spec = shot.frames["first"]
    assert spec == FrameSpec("first", "image-to-image", [
        FrameRef("character", "@林悦 front portrait — 面部细节", name="林悦", angle="front"),
        FrameRef("scene", "Scene: 雨夜老街 — 背景色调", name="rainy-street")],
        "雨夜的老街，霓虹倒映在湿漉漉的石板路上。\n林悦，棕色卷发，红色围巾，深色长风衣，站在街角回头。", 1280, 720, "16:9")
    assert spec.line == 5
    assert list(shot.motion) == ["seedance"]
    assert shot.motion["seedance"].text.endswith("0-5秒：@图片1 中的女人缓缓回头")
    seedance = shot.motion["seedance"]
    assert (seedance.duration_s, seedance.aspect_ratio, seedance.camera_fixed) == (5.0, "16:9", True)
    assert sb.character("林悦").anchor == anchor
    assert order_ids(sb) == [("1.1", "first")]  # no frame plan: shot order


OLDER_LAYOUT = """# Shot 2.2

## Metadata

| Field | Value |
|-------|-------|
| Shot ID | 2.2 |
| Scene | lantern-room |
| Camera | cam_3 (MS, eye-level) |
| Variation | small |
| Duration | 4s |
| Is Primary | true |

## Characters

| Character | First Frame | Last Frame | Portrait Angle |
|-----------|:-----------:|:----------:|:--------------:|
| @Mara | visible, facing camera | visible, facing camera | front |
| @Theo | visible, back to camera | visible, back to camera | back |

## Audio

| Layer | Content |
|-------|---------|
| Dialogue | [Mara, low and steady]: "Then she'll steer by ours." |

## For aivp-image

### Frame 1: first-frame

**Generation mode**: Image-to-image (refine from Shot 2.1 first-frame crop)

**Reference images** (in priority order):
1. Shot 2.1 first-frame — spatial reference (crop to an over-the-shoulder medium shot)
2. @Mara front portrait — face detail

**Prompt** (for image generation model):
> Medium over-the-shoulder shot of a woman in a yellow raincoat,
> rain dripping from her silver braid.

**Negative guidance**: No text, no watermark

**Resolution**: 1920×1080 (16:9)

## For aivp-video

### Clip Generation

**Input frames**: first-frame only (small variation)

**Motion prompt** (Kling 3.0 format):
> [Camera: static, medium shot, eye-level]
> The woman wipes the rain from her face.
> [Mara, low and steady]: "Then she'll steer by ours."

**Motion prompt** (Seedance 2.0 format):
> The woman gently wipes the rain from her face.
> Camera: static medium shot.

**Parameters**:
- Duration: 4s
- Aspect ratio: 16:9
- Camera: static (unfixed camera = NO)
"""


def test_the_older_skill_layout_still_reads(copy: Path) -> None:
    """Blockquoted motion prompts under **Motion prompt** (... format), a **Parameters** list, "Frame 1:" headings."""
    (copy / SHOTS / "shot-04.md").write_text(OLDER_LAYOUT, encoding="utf-8")
    sb = load_storyboard(copy)
    assert sb.problems == []
    shot = sb.shot("2.2")
    assert [(c.name, c.angle, c.first_frame_visible) for c in shot.characters] == [("Mara", "front", True),
                                                                                    ("Theo", "back", True)]
    assert shot.dialogue == [DialogueLine("Mara", "Then she'll steer by ours.", "low and steady")]
    first = shot.frames["first"]
    assert (first.mode, first.width, first.references[0].shot) == ("image-to-image", 1920, "2.1")
    assert first.prompt == "Medium over-the-shoulder shot of a woman in a yellow raincoat,\nrain dripping from her silver braid."
    kling, seedance = shot.motion["kling"], shot.motion["seedance"]
    assert kling.text.endswith('[Mara, low and steady]: "Then she\'ll steer by ours."')
    assert seedance.text == "The woman gently wipes the rain from her face.\nCamera: static medium shot."
    for m in (kling, seedance):
        assert (m.input_frames, m.duration_s, m.aspect_ratio, m.camera_fixed) == ("first", 4.0, "16:9", True)


@pytest.mark.parametrize("text", ["5s", "5 s", "5", "**5s**", "`5 s`", "5 seconds", "5秒", "5s (dialogue at 1.5s)"])
def test_durations_in_any_spelling(text: str) -> None:
    assert parse_duration(text) == 5.0


@pytest.mark.parametrize(("text", "expected"), [
    ("1920×1080 (16:9)", (1920, 1080, "16:9")), ("1920x1080", (1920, 1080, None)),
    ("1920 X 1080 （16：9）", (1920, 1080, "16:9")), ("16:9", (None, None, "16:9")),
    ("**1280 × 720** (16:9)", (1280, 720, "16:9"))])
def test_sizes_with_any_times_sign(text: str, expected: tuple[int | None, int | None, str | None]) -> None:
    assert parse_size(text) == expected


def test_unreadable_values_say_what_was_expected() -> None:
    for bad in ("five", "5-6s", ""):
        with pytest.raises(ValueError, match="expected a duration in seconds such as 5s"):
            parse_duration(bad)
    with pytest.raises(ValueError, match="expected a size such as 1920×1080"):
        parse_size("full HD")


# ------------------------------------------------------------------ files that cannot be understood


def test_a_malformed_metadata_row_is_a_problem_at_its_line(copy: Path) -> None:
    bad_row = edit(copy, f"{SHOTS}/shot-04.md", "| Duration | 4s |", "| Duration 4s |")
    bad_value = edit(copy, f"{SHOTS}/shot-05.md", "| Duration | 5s |", "| Duration | five seconds |")
    bad_variation = edit(copy, f"{SHOTS}/shot-01.md", "| Variation | small |", "| Variation | tiny |")
    no_pipes = edit(copy, f"{SHOTS}/shot-02.md", "| Emotion | ↑ (urgency) |", "Emotion: ↑ (urgency)")
    sb = load_storyboard(copy)
    assert [(p.file, p.line) for p in sb.problems] == [
        (f"{SHOTS}/shot-01.md", bad_variation), (f"{SHOTS}/shot-02.md", no_pipes), (f"{SHOTS}/shot-04.md", bad_row),
        (f"{SHOTS}/shot-05.md", bad_value)]
    assert "expected small, medium or large" in sb.problems[0].message
    assert "expected a table row '| Field | Value |' in ## Metadata, got 'Emotion: ↑ (urgency)'" in sb.problems[1].message
    assert "expected a two-column row '| Field | Value |'" in sb.problems[2].message
    assert "expected a duration in seconds such as 5s" in sb.problems[3].message
    assert str(sb.problems[2]).startswith(f"{SHOTS}/shot-04.md:{bad_row}: ")
    assert sb.shot("1.2").is_primary is True and sb.shot("1.2").emotion is None  # the rows after the break still count
    assert len(sb.shots) == 6  # the other shots, and the other fields of these ones, still load
    shot = sb.shot("2.2")
    assert (shot.scene, shot.character_names, len(shot.dialogue)) == ("lantern-room", ["Mara", "Theo"], 1)
    assert shot.duration_s == 4.0  # the clip parameters say it too
    assert order_ids(sb) == PLAN_ORDER


def test_a_shot_with_no_id_and_broken_parameters_still_loads(copy: Path) -> None:
    edit(copy, f"{SHOTS}/shot-06.md", "# Shot 2.4", "# The lamp")
    edit(copy, f"{SHOTS}/shot-06.md", "| Shot ID | 2.4 |\n", "")
    dangling = edit(copy, f"{SHOTS}/shot-04.md", "1. Shot 2.1 first-frame", "1. Shot 2.9 first-frame")
    bad_size = edit(copy, f"{SHOTS}/shot-03.md", "**Resolution**: 1920×1080 (16:9)", "**Resolution**: full HD")
    bad_mode = edit(copy, f"{SHOTS}/shot-03.md", "**Camera mode**: fixed", "**Camera mode**: wobbly")
    sb = load_storyboard(copy)
    assert len(sb.shots) == 6
    lost = sb.shot(6)
    assert lost.id == "6" and lost.scene == "lantern-room" and lost.needs_last_frame
    messages = {(p.file, p.line): p.message for p in sb.problems}
    assert "no Shot ID" in messages[(f"{SHOTS}/shot-06.md", 1)]
    assert "Resolution: expected a size such as 1920×1080" in messages[(f"{SHOTS}/shot-03.md", bad_size)]
    assert "Camera mode: expected fixed or unfixed" in messages[(f"{SHOTS}/shot-03.md", bad_mode)]
    assert any(p.file == f"{SHOTS}/shot-04.md" and "references Shot 2.9, which has no shot file" in p.message
               and p.line == sb.shot("2.2").frames["first"].line < dangling for p in sb.problems)
    shot = sb.shot("2.1")
    assert shot.frames["first"].width is None and shot.frames["first"].prompt
    # the unreadable value is reported; the Kling block's "fixed" for the same clip stands in for it
    assert shot.motion["seedance"].camera_fixed is True and shot.motion["kling"].camera_fixed is True
    # the frame plan still names Shot 2.4, which no longer exists
    assert any(p.file == PLAN and "Shot 2.4, which has no shot file" in p.message for p in sb.problems)


def test_an_unknown_mention_names_the_known_characters(copy: Path) -> None:
    row = "| @Gulliver | visible | hidden | front | camera |\n"
    line = edit(copy, f"{SHOTS}/shot-03.md", "| @Theo |", row + "| @theo |")
    plan_line = edit(copy, PLAN, "  - Character: @Theo (side) — at the radio desk",
                     "  - Character: @Nemo (front) — stowaway\n  - Character: @THEO (side) — at the radio desk")
    sb = load_storyboard(copy)
    assert [(p.file, p.line) for p in sb.problems] == [(f"{SHOTS}/shot-03.md", line), (PLAN, plan_line)]
    assert "@Gulliver has no character sheet" in sb.problems[0].message
    assert sb.problems[0].message.endswith("known characters: @Mara, @Theo")
    assert "@Nemo" in sb.problems[1].message and "@Mara, @Theo" in sb.problems[1].message
    shot = sb.shot("2.1")
    assert shot.character_names == ["Mara", "Gulliver", "Theo"]  # "@theo" matched case-insensitively
    assert shot.characters[1].last_frame_visible is False


def test_a_missing_storyboard_folder_is_one_clear_problem(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE / "script", tmp_path / "script")
    sb = load_storyboard(tmp_path)
    assert sb.problems == [Problem(FINAL, None, sb.problems[0].message)]
    assert "no storyboard/storyboard-final/ folder" in sb.problems[0].message
    assert sb.shots == [] and sb.keyframe_order() == [] and sb.groups() == []
    assert sorted(sb.characters) == ["mara", "theo"]  # what exists still loads
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(load_storyboard(empty).problems) == 1


def test_only_a_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        load_storyboard(tmp_path / "nope")
    (tmp_path / "file.md").write_text("x")
    with pytest.raises(InputFileError, match="not a folder"):
        load_storyboard(tmp_path / "file.md")


def test_garbage_files_are_problems_not_crashes(copy: Path) -> None:
    (copy / SHOTS / "shot-07.md").write_bytes(b"\xff\xfe\x00garbage | | |\n```\nnever closed")
    (copy / SHOTS / "notes.md").write_text("# not a shot\n")
    (copy / "script/characters/bad.md").write_bytes(b"# Character: Bad\n\xc3\x28 broken utf-8\n")
    sb = load_storyboard(copy)
    files = {p.file for p in sb.problems}
    assert {f"{SHOTS}/shot-07.md", f"{SHOTS}/notes.md", "script/characters/bad.md"} <= files
    assert [s.id for s in sb.shots][:6] == ["1.1", "1.2", "2.1", "2.2", "2.3", "2.4"]
    assert any("not valid UTF-8" in p.message and p.line == 2 for p in sb.problems)


# ------------------------------------------------------------------ keyframe order


def shot(number: int, sid: str, scene: str = "s", *, refs: tuple[str, ...] = (), large: bool = False,
         dialogue: bool = False, cast: int = 1, duration: float = 5.0) -> Shot:
    """A shot built in code, for the ordering and grouping rules."""
    frames = {"first": FrameSpec("first", "image-to-image", [parse_ref(r) for r in refs])}
    return Shot(number=number, id=sid, title=f"Shot {sid}", scene=scene, file=f"{SHOTS}/shot-{number:02d}.md",
                variation="large" if large else "small", duration_s=duration,
                characters=[ShotCharacter(f"C{i}") for i in range(cast)],
                dialogue=[DialogueLine("C0", "line")] if dialogue else [], frames=frames)


def test_keyframe_order_puts_referenced_frames_first_without_a_plan(tmp_path: Path) -> None:
    shots = [shot(1, "1.1", refs=("Prior frame: Shot 1.3 first-frame (wide master)",), large=True),
             shot(2, "1.2"), shot(3, "1.3", refs=("Scene: s",)),
             shot(4, "1.4", refs=("Shot 1.1 last-frame — where she ends up",))]
    sb = with_keyframe_order(Storyboard(tmp_path, shots=shots))
    assert order_ids(sb) == [("1.2", "first"), ("1.3", "first"), ("1.1", "first"), ("1.1", "last"), ("1.4", "first")]


def test_the_order_is_stored_once_and_a_storyboard_built_without_it_says_so(tmp_path: Path) -> None:
    sb = load_storyboard(SAMPLE)
    assert sb.keyframe_plan == [(sb.shot(sid).number, kind) for sid, kind in PLAN_ORDER]
    assert replace(sb, keyframe_plan=None) == sb  # derived from the shots and the plan: not compared
    bare = Storyboard(tmp_path, shots=[shot(1, "1.1")])
    with pytest.raises(ValueError, match="with_keyframe_order"):
        bare.keyframe_order()
    assert order_ids(with_keyframe_order(bare)) == [("1.1", "first")]


def test_an_inconsistent_frame_plan_is_reported_and_not_followed(copy: Path) -> None:
    text = (copy / PLAN).read_text(encoding="utf-8")
    first = re.search(r"(?ms)^#### Frame 1 .*?(?=^#### )", text)
    third = re.search(r"(?ms)^#### Frame 3 .*?(?=^#### )", text)
    assert first and third
    swapped = text.replace(first.group(0), "@@1").replace(third.group(0), first.group(0)).replace("@@1", third.group(0))
    (copy / PLAN).write_text(swapped, encoding="utf-8")
    line = swapped[: swapped.index("#### Frame 3")].count("\n") + 1
    sb = load_storyboard(copy)
    assert [(p.file, p.line) for p in sb.problems] == [(PLAN, line)]
    assert "Shot 1.2 first-frame comes before Shot 1.1 first-frame, which it references" in sb.problems[0].message
    assert order_ids(sb) == [("1.1", "first"), ("1.2", "first"), ("1.2", "last"), ("2.1", "first"), ("2.2", "first"),
                             ("2.3", "first"), ("2.4", "first"), ("2.4", "last")]


def test_a_plan_missing_a_frame_or_forming_a_cycle_is_reported(copy: Path) -> None:
    edit(copy, PLAN, "#### Frame 8 — Shot 2.4 last-frame", "#### Frame 8 — Shot 2.4 (removed)")
    edit(copy, f"{SHOTS}/shot-02.md", "1. Shot 1.1 first-frame — spatial", "1. Shot 1.2 last-frame — spatial")
    sb = load_storyboard(copy)
    messages = [p.message for p in sb.problems]
    assert any("Frame 8 — Shot 2.4 (removed)" in m for m in messages)  # an entry heading it cannot read
    assert any("no entry for Shot 2.4 last-frame" in m for m in messages)
    assert any("cycle" in m and "Shot 1.2 first-frame" in m for m in messages)
    order = order_ids(sb)
    assert sorted(order) == sorted(PLAN_ORDER) and order.index(("2.4", "first")) < order.index(("2.4", "last"))


# ------------------------------------------------------------------ multi-shot groups


def test_groups_never_cross_scenes_and_respect_the_limits(tmp_path: Path) -> None:
    talk: dict[str, Any] = {"dialogue": True, "cast": 2}
    shots = [shot(1, "1.1", "a", **talk), shot(2, "1.2", "a", **talk), shot(3, "2.1", "b", **talk),
             shot(4, "2.2", "b", **talk), shot(5, "2.3", "b", dialogue=True, cast=1), shot(6, "2.4", "b", **talk),
             shot(7, "2.5", "b", **talk), shot(8, "2.6", "b", cast=2), *[shot(9 + i, f"3.{i}", "c", **talk) for i in range(7)]]
    sb = Storyboard(tmp_path, shots=shots)
    ids = lambda groups: [[s.id for s in g] for g in groups]  # noqa: E731
    assert ids(sb.groups()) == [["1.1", "1.2"], ["2.1", "2.2"], ["2.4", "2.5"],
                                ["3.0", "3.1", "3.2", "3.3"], ["3.4", "3.5", "3.6"]]
    for max_shots in (1, 2, 3, 6):
        for group in sb.groups(max_shots=max_shots):
            assert len({s.scene for s in group}) == 1 and len(group) <= max_shots
            assert [s.number for s in group] == list(range(group[0].number, group[0].number + len(group)))
    assert ids(sb.groups(max_shots=2))[-3:] == [["3.0", "3.1"], ["3.2", "3.3"], ["3.4", "3.5"]]  # "3.6" left alone
    assert all(sum(s.duration_s or 0 for s in g) <= 12 for g in sb.groups(max_total_s=12))
    assert ids(sb.groups(max_total_s=12))[-1] == ["3.4", "3.5"]
    with pytest.raises(ValueError):
        sb.groups(max_shots=0)


def test_sample_groups_with_a_smaller_limit() -> None:
    sb = load_storyboard(SAMPLE)
    assert [[s.id for s in g] for g in sb.groups(max_shots=2)] == [["2.1", "2.2"]]  # 2.3 alone: made single-shot
    assert [[s.id for s in g] for g in sb.groups(max_total_s=10)] == [["2.1", "2.2"]]
