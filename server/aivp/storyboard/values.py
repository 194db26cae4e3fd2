"""Parsers for single values: durations, sizes, modes, flags, reference entries and dialogue lines.

Each either returns the value or raises `ValueError` whose message says what was expected; the
caller turns that into a `Problem` with the file and line.
"""

from __future__ import annotations

import re

from .markdown import clean
from .model import DialogueLine, FrameKind, FrameRef

DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:s|secs?|seconds?|sec\.|秒)?\s*(?:[（(][^)）]*[)）])?$", re.IGNORECASE)
SIZE = re.compile(r"(\d{2,5})\s*[×xX✕*]\s*(\d{2,5})")
RATIO = re.compile(r"(?<![\d.])(\d{1,2}(?:\.\d+)?)\s*[:：]\s*(\d{1,2})(?![\d])")
SHOT_ID = re.compile(r"\bshot\s*[#-]?\s*(\d+(?:\.\d+)*[a-z]?)(?![\w.])", re.IGNORECASE)
FRAME_KIND = re.compile(r"\b(first|last|start|end)[\s-]*frame\b|\b(ff|lf)\b", re.IGNORECASE)
ANGLE = re.compile(r"\b(front|side|back)\b", re.IGNORECASE)


def parse_duration(text: str) -> float:
    m = DURATION.match(clean(text))
    if not m:
        raise ValueError(f"expected a duration in seconds such as 5s, got {text!r}")
    return float(m.group(1))


def parse_size(text: str) -> tuple[int | None, int | None, str | None]:
    """`1920×1080 (16:9)`, `1920x1080`, `16:9` -> (width, height, ratio)."""
    size, ratio = SIZE.search(text), RATIO.search(text)
    if not size and not ratio:
        raise ValueError(f"expected a size such as 1920×1080 (16:9), got {text!r}")
    width, height = (int(size.group(1)), int(size.group(2))) if size else (None, None)
    return width, height, f"{ratio.group(1)}:{ratio.group(2)}" if ratio else None


def parse_ratio(text: str) -> str:
    m = RATIO.search(text)
    if not m:
        raise ValueError(f"expected an aspect ratio such as 16:9, got {text!r}")
    return f"{m.group(1)}:{m.group(2)}"


def parse_mode(text: str) -> str:
    """`Image-to-image (refine from ...)` -> `image-to-image`; anything else lowercased as written."""
    low = clean(text).lower()
    m = re.search(r"\b(text|image|img)[\s-]*(?:to|2)[\s-]*(image|img|video)\b", low)
    if m:
        return f"{'image' if m.group(1) == 'img' else m.group(1)}-to-{'image' if m.group(2) == 'img' else m.group(2)}"
    if m := re.search(r"\b(t2i|i2i)\b", low):
        return "text-to-image" if m.group(1) == "t2i" else "image-to-image"
    return re.sub(r"\s*[（(].*$", "", low).strip()


def parse_bool(text: str) -> bool:
    low = clean(text).lower()
    if low in ("true", "yes", "y", "1", "primary", "是"):
        return True
    if low in ("false", "no", "n", "0", "否"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_visible(text: str) -> bool:
    low = clean(text).lower()
    if re.match(r"^(visible|yes|y|true|shown|in frame|on screen|✓|✔|是)", low):
        return True
    if not low or re.match(r"^(hidden|no|n|false|off|out of frame|not visible|n/a|none|[-—–✗✘×]|否)", low):
        return False
    raise ValueError(f"expected visible or hidden, got {text!r}")


def parse_camera_mode(text: str) -> bool:
    """fixed -> True, unfixed -> False (the word before any parenthetical decides)."""
    low = re.sub(r"\s*[（(].*$", "", clean(text).lower())
    if re.search(r"\b(unfixed|not fixed|moving|free|handheld|tracking)\b", low):
        return False
    if re.search(r"\b(fixed|static|locked|tripod)\b", low):
        return True
    raise ValueError(f"expected fixed or unfixed, got {text!r}")


def parse_input_frames(text: str) -> str | None:
    low = clean(text).lower()
    if re.search(r"\blast\b|\bend\b|\+|&|\band\b", low):
        return "first+last"
    if re.search(r"\bfirst\b|\bstart\b", low):
        return "first"
    return None


def parse_camera(text: str) -> tuple[str | None, str | None, str | None]:
    """`cam_1 (MS, eye-level)` -> ("cam_1", "MS", "eye-level")."""
    m = re.match(r"^\s*(cam[\s_-]*\w+)?\s*(?:[（(]([^)）]*)[)）])?", text, re.IGNORECASE)
    cam_id = re.sub(r"[\s-]+", "_", m.group(1).lower()).replace("__", "_") if m and m.group(1) else None
    parts = [p.strip() for p in re.split(r"[,，/]", m.group(2))] if m and m.group(2) else []
    return cam_id, (parts[0] or None) if parts else None, ", ".join(p for p in parts[1:] if p) or None


def shot_id_in(text: str) -> str | None:
    m = SHOT_ID.search(text)
    return m.group(1) if m else None


def frame_kind_in(text: str) -> FrameKind | None:
    m = FRAME_KIND.search(text)
    if not m:
        return None
    word = (m.group(1) or m.group(2)).lower()
    return "last" if word in ("last", "end", "lf") else "first"


PREFIX = re.compile(
    r"^(?P<p>prior frame|previous frame|parent frame|parent|frame|character|char|scene bg|scene background|"
    r"scene|background|location|bg)\s*[:：]\s*",
    re.IGNORECASE,
)


def parse_ref(raw: str) -> FrameRef:
    """One entry of **Reference images** or **References**; see FrameRef for the kinds."""
    text = clean(raw)
    m = PREFIX.match(text)
    prefix = m.group("p").lower() if m else ""
    rest = text[m.end() :] if m else text
    sid = shot_id_in(text)
    if prefix in ("character", "char") or (not prefix and ("@" in text and not text.lower().startswith("shot"))):
        return _character_ref(raw, rest)
    if prefix in ("scene bg", "scene background", "scene", "background", "location", "bg"):
        path = re.search(r"scenes/([^/\s]+?)\.md", rest)
        token = re.match(r"^([^\s(),，—–;；]+)", rest)
        return FrameRef("scene", raw, name=path.group(1) if path else (token.group(1) if token else None))
    if sid and (prefix or text.lower().startswith("shot") or FRAME_KIND.search(text)):
        return FrameRef("frame", raw, shot=sid, frame=frame_kind_in(text[text.lower().find("shot"):]))
    if path := re.search(r"scenes/([^/\s]+?)\.md", text):
        return FrameRef("scene", raw, name=path.group(1))
    return FrameRef("other", raw)


def _character_ref(raw: str, rest: str) -> FrameRef:
    if m := re.search(r"@([^\s(),，—–:：;；@]+)", rest):
        name, after = re.sub(r"['’]s$", "", m.group(1)), rest[m.end() :]
    else:
        m = re.match(r"^(.+?)\s*(?:[(（—–,，;；:：]|\s-\s|$)", rest)
        name = re.sub(r"\b(front|side|back|portrait|view)\b", "", m.group(1) if m else rest, flags=re.I).strip()
        after = rest[m.end() - 1 :] if m else ""
    angle = re.search(r"[(（]\s*(front|side|back)\b", after, re.I) or ANGLE.search(after)
    return FrameRef("character", raw, name=name or None, angle=angle.group(1).lower() if angle else None)


QUOTED = r"(?P<text>\"[^\"]*\"|“[^”]*”|「[^」]*」|『[^』]*』)"
BRACKETED = re.compile(r"\[\s*@?(?P<speaker>[^\[\]:：,，\"“]+?)\s*(?:[,，]\s*(?P<tone>[^\[\]]*?))?\s*\]\s*[:：]\s*" + QUOTED)
NAMED = re.compile(r"(?:^|[\n;；/])\s*@?(?P<speaker>[^\s\[\]:：\"“「(（][^\[\]:：\"“「\n(（]{0,40}?)\s*"
                   r"(?:[(（](?P<tone>[^)）]*)[)）])?\s*[:：]\s*" + QUOTED)
BARE = re.compile(QUOTED)


def parse_dialogue(text: str, *, bare: bool = True) -> list[DialogueLine]:
    """`[Mara, low]: "Line"`, `Mara (low): "Line"` or, with `bare`, a quoted line with no speaker."""
    found: list[tuple[int, DialogueLine]] = []
    for pattern in (BRACKETED, NAMED):
        for m in pattern.finditer(text):
            if any(start <= m.start("text") < end for start, end in _spans(found)):
                continue
            tone = (m.group("tone") or "").strip() or None
            found.append((m.start("text"), DialogueLine(m.group("speaker").strip(), m.group("text")[1:-1].strip(), tone)))
    if not found and bare:
        found = [(m.start(), DialogueLine(None, m.group("text")[1:-1].strip())) for m in BARE.finditer(text)]
    return [line for _, line in sorted(found, key=lambda f: f[0]) if line.text]


def _spans(found: list[tuple[int, DialogueLine]]) -> list[tuple[int, int]]:
    return [(start, start + len(line.text) + 2) for start, line in found]


def dedupe_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())
