"""A synthetic storyboard of any length for bench_storyboard.py, in the shape of the shipped sample
(server/aivp/samples/lighthouse) and /work/shared/reference/storyboard-format.md.

2 characters, 3 scenes; shot k (1-based) is in scene ((k - 1) % 3) + 1, so the scenes take turns,
with id "<scene>.<n>". Each scene has three cameras: its first shot is the scene's root camera, the
next two are child cameras whose **Parent** is that root, and from the fourth shot on the cameras come
round again (the same camera as three shots earlier in the scene: a "prior frame" reference).
Every third shot of a scene from its second (n = 2, 5, 8 ...) is a large variation with a last frame
(first + last frame clip). Characters: Mara alone in scene 1, Theo alone in scene 3, both in scene 2,
at portrait angles that rotate front / side / back, so keyframes wait for side and back portraits.

With `frame_plan=True` a frame-plan.md lists root cameras, then child cameras in shot order (parents
first), then last frames: the order the reader keeps. Without it the reader falls back to shot order.
"""

from __future__ import annotations

from pathlib import Path

CHARACTERS = {
    "mara": ("Mara", "Woman in her mid-sixties with a long silver braid over her left shoulder and a wiry, weathered build, "
                     "wearing a knee-length yellow oilskin raincoat over a grey fisherman's sweater and black rubber boots."),
    "theo": ("Theo", "Young man in his early twenties, tall and lanky, with short curly black hair and round wire-rimmed "
                     "glasses, wearing an olive-green wool sweater with rolled sleeves and brown corduroy trousers."),
}
SCENES = {
    "harbour-quay": ("Harbour Quay", "A stone harbour quay at dusk in the rain: stacked lobster pots, a rusted iron bollard, "
                                     "wet cobbles shining under one gas lamp, fishing boats rocking at their moorings. No people."),
    "lantern-room": ("Lantern Room", "Interior of a lighthouse lantern room at night: a huge brass-framed Fresnel lens on a "
                                     "cast-iron pedestal, curved storm glass streaming with rain, a wooden radio desk with a "
                                     "green-shaded lamp. No people."),
    "cliff-path": ("Cliff Path", "A narrow gravel path along a sea cliff at night, gorse bushes bent by the wind, a wooden "
                                 "fence leaning toward the drop, the lighthouse beam sweeping the low clouds. No people."),
}
SCENE_SLUGS = list(SCENES)
CAST = {1: ["mara"], 2: ["mara", "theo"], 3: ["theo"]}  # scene number -> character slugs
ANGLES = ("front", "side", "back")


def shot_layout(count: int) -> list[dict]:
    """Every shot's scene, id, camera, parent and whether it has a last frame."""
    shots = []
    for k in range(1, count + 1):
        scene = (k - 1) % 3 + 1
        n = (k - 1) // 3 + 1
        cam_local = (n - 1) % 3
        shots.append({
            "number": k, "scene": scene, "slug": SCENE_SLUGS[scene - 1], "n": n, "id": f"{scene}.{n}",
            "camera": f"cam_{(scene - 1) * 3 + cam_local}",
            "cam_local": cam_local,
            "root": f"{scene}.1",
            "prior": f"{scene}.{n - 3}" if n > 3 else None,  # the same camera, three shots earlier in the scene
            "parent": f"{scene}.1" if n in (2, 3) else None,  # first use of a child camera
            "last": n % 3 == 2,
            "cast": CAST[scene],
            "angle": ANGLES[(k - 1) % 3],
        })
    return shots


def _character(slug: str) -> str:
    name, anchor = CHARACTERS[slug]
    return f"""# Character: {name}

## Static Features (immutable across all scenes)
- **Build:** as in the anchor phrase

## Dynamic Features (may change per scene)
- **Default outfit:** as in the anchor phrase

## Voice Profile
- **Tone:** low and even

## Multi-Angle Portrait Guide
1. **Front** (full-body, neutral pose) — generated first from the text description
2. **Side** (full-body, 3/4 angle) — generated using the front portrait as reference
3. **Back** (full-body, rear view) — generated using the front portrait as reference

## Prompt Anchor Phrase
A single-paragraph description, copied into every shot prompt featuring {name}:

> "{anchor}"
"""


def _scene(slug: str, shots: list[dict]) -> str:
    name, prompt = SCENES[slug]
    ids = ", ".join(s["id"] for s in shots if s["slug"] == slug)
    return f"""# Scene: {name}

## Environment
- **Type:** exterior or interior as described

## Lighting
- **Time of day:** night

## Atmosphere
- **Ambient sound:** rain and wind

## Scene Prompt
A single-paragraph description for generating the empty scene background:

> "{prompt}"

## Shots in this scene
- {ids}
"""


def _shot(s: dict) -> str:
    names = [CHARACTERS[c][0] for c in s["cast"]]
    anchors = "\n".join(f"> {CHARACTERS[c][1]}" for c in s["cast"])
    rows = "\n".join(f"| @{nm} | visible | visible | {s['angle']} | camera |" for nm in names)
    variation = "large" if s["last"] else "small"
    refs = []
    if s["prior"]:
        refs.append(f"Shot {s['prior']} first-frame — same camera {s['camera']}: layout and lighting")
    elif s["parent"]:
        refs.append(f"Shot {s['parent']} first-frame — spatial reference (parent camera)")
    refs += [f"@{nm} {s['angle']} portrait — face and costume" for nm in names]
    refs.append(f"Scene: {s['slug']} — background tones")
    ref_list = "\n".join(f"{i}. {r}" for i, r in enumerate(refs, 1))
    mode = "Image-to-image (refine from the parent frame)" if (s["prior"] or s["parent"]) else "Text-to-image (root camera)"
    last_decomp = ("> The same framing a moment later: the figures have turned toward the light and the camera has "
                   "pushed in slightly.") if s["last"] else "> (small variation — not required)"
    last_image = f"""
### Frame: last-frame (large variation)

**Generation mode**: Image-to-image (modify the first frame per the motion)

**Reference images**:
1. Shot {s['id']} first-frame — starting state, same camera
{chr(10).join(f"{i}. @{nm} {s['angle']} portrait" for i, nm in enumerate(names, 2))}

**Prompt**:
> Shot {s['id']}, the same framing a moment later: the figures have turned toward the light, the camera has pushed in.
{anchors}
> Cinematic, 16:9.

**Resolution**: 1920×1080 (16:9)
""" if s["last"] else ""
    frames = "first + last frame" if s["last"] else "first-frame only"
    return f"""# Shot {s['id']}

## Metadata

| Field | Value |
|-------|-------|
| Shot ID | {s['id']} |
| Scene | {s['slug']} |
| Camera | {s['camera']} (MS, eye-level) |
| Variation | {variation} |
| Duration | 5s |
| Emotion | → (steady) |
| Is Primary | true |

## Characters

| Character | First Frame | Last Frame | Portrait Angle | Facing |
|-----------|:-----------:|:----------:|:--------------:|:------:|
{rows}

## Shot Decomposition

### First Frame
> Medium shot {s['number']} at eye level in the {SCENES[s['slug']][0].lower()}, {', '.join(names)} in frame.

### Last Frame
{last_decomp}

### Motion
> The camera drifts slowly to the right while {' and '.join(names)} speak quietly; rain streaks the air.

## Audio

| Layer | Content |
|-------|---------|
| Dialogue | (none) |
| BGM | Low strings |
| SFX | Rain, wind |

---

## For aivp-image

### Frame: first-frame

**Generation mode**: {mode}

**Reference images**:
{ref_list}

**Prompt**:
> Medium shot {s['number']} at eye level in the {SCENES[s['slug']][0].lower()} at night.
{anchors}
> Cold blue storm light, one warm practical light. Cinematic, 16:9.

**Resolution**: 1920×1080 (16:9)
{last_image}
---

## For aivp-video

### Seedance 2.0 (Primary)

```
【整体描述】
电影写实风格，5秒，16:9横屏，镜头{s['number']}，暴风雨之夜

【分镜描述】
0-5秒：镜头缓缓向右移动，人物低声交谈，雨丝划过画面

【参考素材说明】
@图片1 作为首帧画面

角色面部稳定不变形，动作自然流畅，电影质感
```

**Input frames**: {frames}
**Duration**: 5s
**Aspect ratio**: 16:9
**Camera mode**: unfixed

### Kling 3.0 (Fallback)

```
[Camera: slow drift right, medium shot, eye level]
Shot {s['number']}: {' and '.join(names)} speak quietly while rain streaks the air.
(Duration: 5s)
```

**Input frames**: {frames}
**Duration**: 5s
**Aspect ratio**: 16:9
**Camera mode**: unfixed
"""


def _frame_plan(shots: list[dict]) -> str:
    lines = ["# Frame Generation Plan — Bench Storyboard", "", "## Summary", "", "| Metric | Value |", "|--------|-------|",
             f"| Total frames to generate | {len(shots) + sum(s['last'] for s in shots)} |", "", "## Generation Queue", ""]
    k = 0

    def entry(s: dict, kind: str, parent: str | None, prior: str | None) -> None:
        nonlocal k
        k += 1
        lines.append(f"#### Frame {k} — Shot {s['id']} {kind}-frame")
        lines.append(f"- **Camera**: {s['camera']} (MS, eye-level)")
        if parent:
            lines.append(f"- **Parent**: cam_{(s['scene'] - 1) * 3} (Shot {parent})")
        lines.append(f"- **Scene**: {s['slug']}")
        lines.append("- **References**:")
        if kind == "last":
            lines.append(f"  - Prior frame: Shot {s['id']} first-frame (same camera, starting state)")
        elif prior:
            lines.append(f"  - Prior frame: Shot {prior} first-frame (same camera: layout and lighting)")
        else:
            lines.append(f"  - Scene bg: `scenes/{s['slug']}.md` prompt")
        for c in s["cast"]:
            lines.append(f"  - Character: @{CHARACTERS[c][0]} ({s['angle']}) — in frame")
        lines.append("- **Generation mode**: " + ("Text-to-image" if kind == "first" and not (parent or prior) else "Image-to-image"))
        lines.append("")

    lines += ["### Priority 1: Root Cameras (Establishing Shots)", ""]
    for s in shots:
        if s["n"] == 1:
            entry(s, "first", None, None)
    lines += ["### Priority 2: Child Cameras", ""]
    for s in shots:
        if s["n"] > 1:
            entry(s, "first", s["parent"], s["prior"])
    lines += ["### Priority 3: Last Frames (medium/large variation only)", ""]
    for s in shots:
        if s["last"]:
            entry(s, "last", None, None)
    return "\n".join(lines) + "\n"


def write_storyboard(project: Path, count: int, frame_plan: bool = True) -> list[dict]:
    """Write script/ and storyboard/storyboard-final/ for `count` shots under `project`; returns the layout."""
    shots = shot_layout(count)
    chars = project / "script" / "characters"
    scenes = project / "script" / "scenes"
    final = project / "storyboard" / "storyboard-final"
    for d in (chars, scenes, final / "shots"):
        d.mkdir(parents=True, exist_ok=True)
    for slug in CHARACTERS:
        (chars / f"{slug}.md").write_text(_character(slug), encoding="utf-8")
    for slug in SCENES:
        (scenes / f"{slug}.md").write_text(_scene(slug, shots), encoding="utf-8")
    for s in shots:
        (final / "shots" / f"shot-{s['number']:02d}.md").write_text(_shot(s), encoding="utf-8")
    if frame_plan:
        (final / "frame-plan.md").write_text(_frame_plan(shots), encoding="utf-8")
    return shots
