"""Cost estimates from the catalog, for one call's effective input.

The estimate is shown before a call, checked against the budget, and recorded with the job. It is
an estimate: providers bill what they bill, and the catalog notes say where a price is approximate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .sizes import parse_ratio
from .schema import Endpoint, Model, Param, Pricing, Route

SHORT_SIDE = {"360p": 360, "480p": 480, "540p": 540, "576p": 576, "720p": 720, "768p": 768, "1080p": 1080,
              "1440p": 1440, "2160p": 2160, "4k": 2160, "2k": 1440}
LONG_SIDE_K = {"1k": 1024, "2k": 2048, "4k": 4096}


@dataclass(frozen=True)
class Estimate:
    usd: float
    unit: str
    quantity: float
    unit_price: float
    detail: str
    known: bool = True  # False: no price could be computed; `usd` is then the caller's max_cost_usd (or 0 in a dry run)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"usd": round(self.usd, 4), "unit": self.unit, "quantity": round(self.quantity, 4),
                               "unit_price": self.unit_price, "detail": self.detail}
        if not self.known:
            out["price_known"] = False
        return out

    @property
    def shown(self) -> str:
        """"~$0.150" or "unknown" (never a silent $0)."""
        return f"~${self.usd:.3f}" if self.known else "unknown"


def estimate(pricing: Pricing, params: dict[str, Param], effective: dict[str, Any]) -> Estimate:
    """What one call with this effective input should cost."""
    if pricing.unit == "unknown":
        return Estimate(0.0, "unknown", 0.0, 0.0, f"price unknown: {pricing.note or 'no price'}", known=False)
    price = pricing.price
    for rule in pricing.when:
        if all(_same(effective.get(k), v) for k, v in rule.if_.items()):
            price = rule.price
            break
    by_role: dict[str, str] = {p.role: n for n, p in params.items() if p.role}
    count = int(effective.get(by_role.get("num_images", ""), 1) or 1) * _set_size(effective)
    unit = pricing.unit
    if unit == "image":
        return Estimate(price * count, unit, count, price, f"{count} image(s) x ${price:g}")
    if unit == "call":
        return Estimate(price, unit, 1, price, f"${price:g} per call")
    if unit == "megapixel":
        w, h = output_pixels(params, effective, by_role)
        mp = w * h / 1_000_000
        per_image = (pricing.first + max(0.0, mp - 1) * price) if pricing.first is not None else mp * price
        return Estimate(per_image * count, unit, mp * count, price, f"{count} x {w}x{h} ({mp:.2f} MP)")
    seconds, said = clip_seconds(params, effective, by_role)
    if unit == "second":
        return Estimate(price * seconds, unit, seconds, price, f"{said} x ${price:g}/s")
    # video_token: tokens = w * h * fps * seconds / 1024, priced per million
    w, h = video_pixels(effective, by_role)
    tokens = w * h * pricing.fps * seconds / 1024
    return Estimate(tokens / 1e6 * price, unit, tokens, price,
                    f"{w}x{h} x {pricing.fps} fps x {said} = {tokens:,.0f} tokens at ${price:g}/M")


def clip_seconds(params: dict[str, Param], effective: dict[str, Any], by_role: dict[str, str]) -> tuple[float, str]:
    """The clip length a call asks for, and how to say it. A duration the model chooses ("auto") is
    counted at the longest it allows, so the budget never sees less than it may pay."""
    name = by_role.get("duration", "")
    value = effective.get(name)
    seconds = duration_seconds(value)
    if seconds is None and value is not None and name in params:
        allowed = [d for d in (duration_seconds(v) for v in params[name].values or []) if d is not None]
        if allowed or params[name].max is not None:
            longest = max(allowed) if allowed else float(params[name].max or 5.0)
            return longest, f"{value} (up to {longest:g} s)"
    seconds = seconds or 5.0
    return seconds, f"{seconds:g} s"


def estimate_call(model: Model, endpoint: Endpoint, route: Route, effective: dict[str, Any]) -> Estimate:
    from . import effective_params, effective_pricing

    return estimate(effective_pricing(model, endpoint, route), effective_params(model, endpoint, route), effective)


def typical(model: Model) -> Estimate:
    """The cost of a default call of the model's first endpoint: one image, or a default-length clip."""
    from . import effective_params, effective_pricing

    e = model.endpoints[0]
    r = e.routes[0]
    params = effective_params(model, e, r)
    eff = {n: p.default for n, p in params.items() if p.default is not None}
    return estimate(effective_pricing(model, e, r), params, eff)


def _set_size(effective: dict[str, Any]) -> int:
    """Images per generation when a model returns a set (Seedream): the most it may bill, for the budget."""
    if effective.get("sequential_image_generation") == "auto":
        opts = effective.get("sequential_image_generation_options") or {}
        return max(1, int(opts.get("max_images", 15) or 15))
    return max(1, int(effective.get("max_images", 1) or 1))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or str(a).lower() == str(b).lower()
    return a == b or str(a).lower() == str(b).lower()


def duration_seconds(value: Any) -> float | None:
    if value is None:
        return None
    m = re.match(r"\s*(\d+(?:\.\d+)?)", str(value))
    return float(m[1]) if m else None


def output_pixels(params: dict[str, Param], effective: dict[str, Any], by_role: dict[str, str]) -> tuple[int, int]:
    """Pixel size of one output image, as far as the input says; about 1 MP when it does not."""
    size_field = by_role.get("size")
    value = effective.get(size_field) if size_field else None
    if isinstance(value, dict) and "width" in value:
        return int(value["width"]), int(value["height"])
    if isinstance(value, str) and size_field:
        presets = params[size_field].presets or {}
        if value in presets:
            return presets[value]
        if m := re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", value):
            return int(m[1]), int(m[2])
    ratio = parse_ratio(str(effective.get(by_role.get("aspect_ratio", ""), "1:1"))) or 1.0
    res = str(effective.get(by_role.get("resolution", ""), "")).lower()
    long_side = LONG_SIDE_K.get(res, 1024)
    if ratio >= 1:
        return long_side, int(long_side / ratio)
    return int(long_side * ratio), long_side


def video_pixels(effective: dict[str, Any], by_role: dict[str, str]) -> tuple[int, int]:
    ratio = parse_ratio(str(effective.get(by_role.get("aspect_ratio", ""), "16:9"))) or 16 / 9
    short = SHORT_SIDE.get(str(effective.get(by_role.get("resolution", ""), "720p")).lower(), 720)
    if ratio >= 1:
        return int(round(short * ratio)), short
    return short, int(round(short / ratio))


UNIT_WORDS = {"image": "image", "megapixel": "megapixel", "second": "second", "video_token": "million video tokens",
              "call": "call", "unknown": "unknown"}


def price_text(pricing: Pricing, *, with_note: bool = False) -> str:
    """A price in words: "$0.15/image", "$0.4/second; $0.2 when generate_audio=False" ..."""
    if pricing.unit == "unknown":
        return f"unknown ({pricing.note})" if pricing.note else "unknown"
    text = f"${pricing.price:g}/{UNIT_WORDS[pricing.unit]}" if pricing.first is None else \
        f"${pricing.first:g} first MP + ${pricing.price:g}/extra MP"
    for rule in pricing.when:
        text += f"; ${rule.price:g} when " + ", ".join(f"{k}={v}" for k, v in rule.if_.items())
    if with_note and pricing.note:
        text += f" ({pricing.note})"
    return text
