"""The project folder convention: every path aivp reads or writes by name is built here, and only here.

    script/characters/<slug>.md, script/scenes/<slug>.md       upstream, read
    storyboard/storyboard-final/frame-plan.md, shots/           upstream, read
    image/characters/<slug>[-<variation>]-<view>.png            character sheets
    image/locations/<slug>[-<variation>].png   image/styles/    location plates, style frames
    image/frames/shot-NN-ff.png, -lf.png                         representative keyframes
    image/candidates/shot-NN/ff-c<k>.png ... selected.json       keyframe candidates
    image/generated/<slug>-<id>.png   video/generated/           standalone results
    image/log/<stem>.json, image/plan.md                         records and progress table
    video/clips/shot-NN.mp4, group-NN.mp4   video/posters/       clips and their poster frames
    video/log/<stem>.json, video/plan.md
    .aivp/                                                       ledger and cache: never served

Every function returns a project-relative POSIX path (a `str`); `Project` turns it into a checked
absolute path. Nothing here touches the disk.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from typing import Literal

Kind = Literal["image", "video"]
FrameKind = Literal["first", "last"]

STATE_DIR = ".aivp"
SCRIPT_CHARACTERS = "script/characters"
SCRIPT_SCENES = "script/scenes"
STORYBOARD = "storyboard/storyboard-final"
FRAME_PLAN = f"{STORYBOARD}/frame-plan.md"
SHOTS = f"{STORYBOARD}/shots"
CHARACTERS = "image/characters"
LOCATIONS = "image/locations"
STYLES = "image/styles"
FRAMES = "image/frames"
CANDIDATES = "image/candidates"
CLIPS = "video/clips"
POSTERS = "video/posters"
GENERATED: dict[str, str] = {"image": "image/generated", "video": "video/generated"}
LOG_DIR: dict[str, str] = {"image": "image/log", "video": "video/log"}
PLAN: dict[str, str] = {"image": "image/plan.md", "video": "video/plan.md"}
FRAME_SUFFIX: dict[str, str] = {"first": "ff", "last": "lf"}
FRAME_OF_SUFFIX: dict[str, str] = {v: k for k, v in FRAME_SUFFIX.items()}

# Folders whose files are named by the convention: what a file there is, and it gets a plan.md row.
CONVENTION_TYPES: dict[str, str] = {
    f"{CHARACTERS}/": "character", f"{FRAMES}/": "keyframe", f"{LOCATIONS}/": "location",
    f"{STYLES}/": "style", f"{CANDIDATES}/": "candidate", f"{CLIPS}/": "clip",
}
PLANNED_FOLDERS = (f"{FRAMES}/", f"{CHARACTERS}/", f"{LOCATIONS}/", f"{STYLES}/", f"{CLIPS}/")
CANDIDATE_NAME = re.compile(r"^(ff|lf)-([cup])(\d+)\.png$")  # generated, uploaded, previous representative


def slug(text: str, *, fallback: str = "item", max_len: int = 40) -> str:
    """A safe file-name fragment: lowercase ASCII words joined by '-'; never raw prompt text."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    out = ""
    for w in words:
        if len(out) + len(w) + 1 > max_len:
            break
        out = f"{out}-{w}" if out else w
    return out or fallback


# ---------------------------------------------------------------- shots

def shot_stem(number: int) -> str:
    return f"shot-{number:02d}"


def frame_path(number: int, kind: str) -> str:
    """The representative keyframe of a shot: image/frames/shot-NN-ff.png (first) or -lf.png (last)."""
    return f"{FRAMES}/{shot_stem(number)}-{FRAME_SUFFIX[kind]}.png"


def clip_path(number: int) -> str:
    return f"{CLIPS}/{shot_stem(number)}.mp4"


def group_clip(number: int, ext: str = "mp4") -> str:
    return f"{CLIPS}/group-{number:02d}.{ext}"


def candidates_folder(number: int) -> str:
    return f"{CANDIDATES}/{shot_stem(number)}"


def candidate_path(number: int, frame: str, tag: str, k: int) -> str:
    """image/candidates/shot-NN/ff-c2.png: tag c = generated, u = uploaded, p = a replaced representative."""
    return f"{candidates_folder(number)}/{FRAME_SUFFIX[frame]}-{tag}{k}.png"


def selection_file(number: int) -> str:
    return f"{candidates_folder(number)}/selected.json"


# ---------------------------------------------------------------- assets

def asset_markdown(kind: str, asset_slug: str) -> str:
    return f"{SCRIPT_CHARACTERS if kind == 'character' else SCRIPT_SCENES}/{asset_slug}.md"


def asset_image(kind: str, asset_slug: str, variation: str | None = None, view: str = "front") -> str:
    """A character sheet view or a location plate; a variation other than the default carries its name."""
    stem = asset_slug if not variation or variation.lower() == "default" else f"{asset_slug}-{slug(variation)}"
    return f"{LOCATIONS}/{stem}.png" if kind == "location" else f"{CHARACTERS}/{stem}-{view}.png"


def portrait_path(character_slug: str, view: str = "front") -> str:
    return asset_image("character", character_slug, None, view)


def location_path(scene_slug: str) -> str:
    return asset_image("location", scene_slug)


# ---------------------------------------------------------------- outputs, records, plans

def generated_path(kind: str, prompt: str, job_id: str, ext: str, index: int = 0, count: int = 1) -> str:
    """`image/generated/<slug>-<short id>[-<n>].<ext>` for a standalone result."""
    suffix = f"-{index + 1}" if count > 1 else ""
    return f"{GENERATED[kind]}/{slug(prompt, fallback=kind)}-{job_id[-8:].lower()}{suffix}.{ext}"


def record_stem(rel: str) -> str:
    """The record's name for an output: its stem; a candidate's carries its shot (`shot-01-ff-c2`), since
    every shot's folder has an ff-c1.png."""
    parts = rel.split("/")
    stem = PurePosixPath(rel).stem
    return f"{parts[2]}-{stem}" if len(parts) == 4 and parts[:2] == CANDIDATES.split("/") else stem


def record_path(kind: str, rel: str) -> str:
    return f"{LOG_DIR[kind]}/{record_stem(rel)}.json"


def poster_path(clip_rel: str) -> str:
    """video/posters/<stem>.jpg beside the clips' folder."""
    p = PurePosixPath(clip_rel)
    if len(p.parts) < 2:
        return f"{POSTERS}/{p.stem}.jpg"
    base = p.parent.parent.as_posix()
    return f"posters/{p.stem}.jpg" if base == "." else f"{base}/posters/{p.stem}.jpg"


def convention_type(rel: str) -> str | None:
    """What a file of a convention folder is (keyframe, clip, character ...); None elsewhere."""
    for prefix, name in CONVENTION_TYPES.items():
        if rel.startswith(prefix):
            return name
    return None


def has_plan_row(rel: str) -> bool:
    """Files of the planned convention folders are tracked in image/plan.md or video/plan.md."""
    return rel.startswith(PLANNED_FOLDERS)


def plan_type(rel: str) -> str:
    """The plan table's Type cell for a file: its stem (shot-01-ff, mara-front, shot-03)."""
    return PurePosixPath(rel).stem
