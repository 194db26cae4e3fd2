"""Aspect ratios and sizes: parsing "16:9", a size near N megapixels, the nearest ratio a model offers."""

from __future__ import annotations

import math
import re

# Resolution tiers of the fal + Seedream router (megapixels; 4:5 gives 1920x2400, 2560x3200, 3200x4000)
SIZE_TIERS = {"standard": 4.608, "high": 8.192, "max": 12.8}
ASPECT_PRESETS = {
    "16:9": "landscape_16_9",
    "4:3": "landscape_4_3",
    "1:1": "square_hd",
    "3:4": "portrait_4_3",
    "9:16": "portrait_16_9",
}


def parse_ratio(ratio: str) -> float | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[:/x]\s*(\d+(?:\.\d+)?)\s*", ratio)
    return float(m[1]) / float(m[2]) if m and float(m[2]) else None


def ratio_size(ratio: str, megapixels: float = 1.0, multiple: int = 16) -> tuple[int, int] | None:
    """A width x height near `megapixels` with the given ratio, both multiples of 16."""
    r = parse_ratio(ratio)
    if r is None:
        return None
    h = math.sqrt(megapixels * 1_000_000 / r)
    w = h * r
    return int(round(w / multiple) * multiple), int(round(h / multiple) * multiple)


def nearest_ratio(w: int, h: int, choices: list[str]) -> str:
    target = w / h
    scored = [(abs(math.log((parse_ratio(c) or target) / target)), c) for c in choices if parse_ratio(c)]
    return min(scored)[1] if scored else f"{w}:{h}"
