"""Placeholder images: cards that say what would have been generated, from what.

Pillow is imported inside the functions: the sandbox package is imported by the CLI, and the main
server's cold start should not pay for image libraries it may never use.
"""

from __future__ import annotations

import colorsys
import io
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageFont import FreeTypeFont

BANNER = "PLACEHOLDER — aivp sandbox"
IMAGE_LONG_SIDE = 1024  # cards are scaled down: enough to read, small enough to be quick
VIDEO_LONG_SIDE = 480

# fal's image_size presets, for endpoints whose catalog entry does not list them
FAL_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


@dataclass
class RenderedFile:
    """One output file, in memory until the job stores it."""

    data: bytes
    content_type: str
    file_name: str
    width: int | None = None
    height: int | None = None


# -- geometry --------------------------------------------------------------------------------


def parse_ratio(value: Any) -> float | None:
    """"16:9" -> 1.777...; "auto", None or nonsense -> None."""
    if not isinstance(value, str) or ":" not in value:
        return None
    try:
        w, h = (float(x) for x in value.split(":", 1))
    except ValueError:
        return None
    return w / h if w > 0 and h > 0 else None


def fit(ratio: float, long_side: int) -> tuple[int, int]:
    """Even width and height with that ratio whose longer side is `long_side`."""
    w: float
    h: float
    if ratio >= 1:
        w, h = long_side, long_side / ratio
    else:
        w, h = long_side * ratio, long_side
    return max(2, int(round(w / 2)) * 2), max(2, int(round(h / 2)) * 2)


def output_size(roles: dict[str, Any], presets: dict[str, tuple[int, int]] | None, first_input: Image | None,
                long_side: int, default_ratio: float = 1.0) -> tuple[int, int]:
    """The size to render: from the size role, else the aspect ratio, else the first input image."""
    size = roles.get("size")
    if isinstance(size, dict) and isinstance(size.get("width"), int) and isinstance(size.get("height"), int):
        if size["width"] > 0 and size["height"] > 0:
            return fit(size["width"] / size["height"], min(long_side, max(size["width"], size["height"])))
    if isinstance(size, str):
        wh = (presets or {}).get(size) or FAL_SIZES.get(size)
        if wh:
            return fit(wh[0] / wh[1], min(long_side, max(wh)))
    ratio = parse_ratio(roles.get("aspect_ratio"))
    if ratio is None and first_input is not None:
        ratio = first_input.width / first_input.height
    return fit(ratio or default_ratio, long_side)


# -- drawing ---------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> FreeTypeFont:
    from PIL import ImageFont

    try:  # DejaVu has the em dash and most scripts a prompt may use; Pillow's own font is the fallback
        return ImageFont.truetype("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size)
    except OSError:
        fallback = ImageFont.load_default(size)  # a FreeType font when a size is given (Pillow >= 10.1)
        assert isinstance(fallback, ImageFont.FreeTypeFont)
        return fallback


def _fitting(text: str, size: int, width: int, bold: bool = False) -> FreeTypeFont:
    """The largest font up to `size` at which `text` is at most `width` pixels wide."""
    f = font(size, bold)
    while size > 8 and f.getlength(text) > width:
        size -= 1
        f = font(size, bold)
    return f


def colour(seed: int, value: float = 0.30) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((seed % 360) / 360, 0.45, value)
    return int(r * 255), int(g * 255), int(b * 255)


def cover(img: Image, size: tuple[int, int]) -> Image:
    """`img` scaled and centre-cropped to fill `size` exactly."""
    from PIL import ImageOps

    return ImageOps.fit(img.convert("RGB"), size)


def card(size: tuple[int, int], *, subtitle: str, prompt: str, thumbs: list[Image], footer: str, seed: int) -> Image:
    """A card: the placeholder banner, model, wrapped prompt, input thumbnails and a footer line."""
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", size, colour(seed))
    d = ImageDraw.Draw(img)
    stripe = colour(seed, 0.36)
    for x in range(-h, w, max(24, w // 24)):  # diagonal stripes: nobody mistakes this for a render
        d.line([(x, h), (x + h, 0)], fill=stripe, width=max(2, w // 160))
    short = min(w, h)
    m = max(8, short // 28)
    big = _fitting(BANNER, max(14, short // 16), w - 2 * m, bold=True)
    small = font(max(10, short // 40))

    bh = int(big.size * 1.8)
    d.rectangle([0, 0, w, bh], fill=(250, 204, 21))
    d.text((m, (bh - big.size) // 2 - 2), BANNER, font=big, fill=(20, 20, 20))
    y = bh + m // 2
    d.text((m, y), subtitle, font=small, fill=(225, 225, 225))
    y += int(small.size * 1.8)

    # thumbnails share one row; their height shrinks until all of them fit the width
    aspects = [t.width / max(1, t.height) for t in thumbs]
    gap = m // 2
    thumb_h = int(min(h // 5, (w - 2 * m - gap * max(0, len(thumbs) - 1)) / sum(aspects))) if thumbs else 0
    bottom = h - m - int(small.size * 1.6) - (thumb_h + m if thumbs else 0)
    # the prompt gets the largest font (up to the banner's) at which it fits the free space
    text = prompt or "(no prompt)"
    for size_px in range(max(12, short // 14), 9, -2):
        body = font(size_px)
        chars = max(10, int((w - 2 * m) / (body.size * 0.55)))
        lines = textwrap.wrap(text, chars) or [""]
        if len(lines) * int(body.size * 1.3) <= bottom - y:
            break
    room = max(1, (bottom - y) // int(body.size * 1.3))
    if len(lines) > room:
        lines = lines[:room]
        lines[-1] = lines[-1][: max(0, chars - 1)] + "…"
    for line in lines:
        d.text((m, y), line, font=body, fill=(245, 245, 245))
        y += int(body.size * 1.3)

    x, ty = m, h - m - int(small.size * 1.6) - thumb_h
    for i, (t, a) in enumerate(zip(thumbs, aspects), 1):
        tw = max(1, int(thumb_h * a))
        img.paste(t.convert("RGB").resize((tw, max(1, thumb_h))), (x, ty))
        d.rectangle([x, ty, x + tw, ty + thumb_h], outline=(250, 204, 21), width=2)
        d.text((x + 4, ty + 2), f"@Image{i}", font=small, fill=(250, 204, 21), stroke_width=2, stroke_fill=(0, 0, 0))
        x += tw + gap
    d.text((m, h - m - small.size), footer, font=small, fill=(200, 200, 200))
    return img


def decode_image(data: bytes) -> Image | None:
    """A Pillow image from bytes, or None when they are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def encode(img: Image, fmt: str) -> tuple[bytes, str, str]:
    """(bytes, content type, extension) for "png" | "jpeg" | "webp"."""
    fmt = fmt.lower() if fmt.lower() in ("png", "jpeg", "jpg", "webp") else "png"
    fmt = "jpeg" if fmt == "jpg" else fmt
    buf = io.BytesIO()
    img.save(buf, fmt.upper(), **({"quality": 85} if fmt != "png" else {"optimize": False}))
    return buf.getvalue(), f"image/{fmt}", "jpg" if fmt == "jpeg" else fmt


def render_images(*, size: tuple[int, int], count: int, subtitle: str, prompt: str, inputs: list[Image],
                  seed: int, fmt: str = "png") -> list[RenderedFile]:
    """`count` placeholder cards of `size`."""
    thumbs = [i.copy() for i in inputs[:6]]
    for t in thumbs:
        t.thumbnail((256, 256))
    out = []
    for n in range(count):
        footer = f"image {n + 1}/{count} · seed {seed} · {size[0]}x{size[1]} · not a real generation"
        img = card(size, subtitle=subtitle, prompt=prompt, thumbs=thumbs, footer=footer, seed=seed + n * 47)
        data, ctype, ext = encode(img, fmt)
        out.append(RenderedFile(data, ctype, f"placeholder_{n + 1}.{ext}", size[0], size[1]))
    return out
