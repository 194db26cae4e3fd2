"""Images with Pillow: sizes, and small previews that fit an MCP ImageContent byte budget."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..errors import InputFileError, InvalidParameterError
from ._util import require_file, to_rgb_or_l
from .poster import poster_frame
from .sniff import is_image_mime, is_video_mime, sniff_mime

if TYPE_CHECKING:
    from PIL import Image

_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that turn the picture a quarter
# Quality first, then size: a softer preview reads better than a tiny one.
_QUALITIES = (85, 72, 60, 45, 30)
_SHRINK = 0.75
_MIN_SIDE = 16


def check_image(source: Path | bytes, what: str) -> tuple[int, int]:
    """(width, height) from the header of a file or bytes that must be an image aivp can safely decode.

    Refused with InputFileError: bytes that are not a readable image, and images with more pixels than
    Pillow's decompression-bomb limit (a 30000x30000 PNG is 109 KB on disk and 2.7 GB decoded).
    """
    import warnings

    from PIL import Image

    fp: Path | io.BytesIO = io.BytesIO(source) if isinstance(source, bytes) else source
    limit = Image.MAX_IMAGE_PIXELS or 0  # None turns Pillow's check off; aivp keeps its default then
    limit = limit or 89_478_485
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                width, height = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputFileError(f"{what} has more pixels than aivp will decode ({limit / 1e6:.0f} "
                             "megapixels at most); it may be a decompression bomb. Resize it and try again.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputFileError(f"{what} is not a readable image ({exc}); pass a PNG, JPEG or WebP file.") from None
    if width * height > limit:
        raise InputFileError(f"{what} is {width}x{height} pixels, more than aivp will decode "
                             f"({limit / 1e6:.0f} megapixels at most); resize it and try again.")
    return width, height


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed, i.e. after EXIF orientation, reading only the header."""
    from PIL import Image

    with _open_image(path) as im:
        width, height = im.size
        # Only formats that carry EXIF in their header: Pillow's PNG getexif() would decode
        # the whole image to look for a trailing eXIf chunk.
        if "exif" in im.info or im.format == "TIFF":
            try:
                if im.getexif().get(_ORIENTATION) in _SWAPS_AXES:
                    width, height = height, width
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
                pass  # a broken EXIF block leaves the stored orientation
    return width, height


def thumbnail(path: Path, *, max_side: int = 384, max_bytes: int = 48_000) -> tuple[bytes, str]:
    """A small preview for an MCP ImageContent: (bytes, mime).

    Images are scaled to fit `max_side` (never enlarged); videos give their poster frame.
    Encoded as JPEG, or WebP when that is smaller, lowering quality and then size until the
    raw bytes fit `max_bytes` (callers base64 them). Transparency is flattened onto white,
    16-bit images are scaled to 8 bits, EXIF orientation is applied. Raises InputFileError
    if the file is not a readable image or video.
    """
    if max_side < _MIN_SIDE or max_bytes < 1024:
        raise InvalidParameterError(
            f"thumbnail needs max_side >= {_MIN_SIDE} and max_bytes >= 1024 "
            f"(got {max_side} and {max_bytes})"
        )
    mime = sniff_mime(path)
    if is_video_mime(mime):
        image = cast("Image.Image", poster_frame(path))  # without `out` it is the image
    elif mime and mime.startswith("audio/"):
        raise InputFileError(f"{path} is audio ({mime}); there is no picture to preview")
    else:
        image = _load_for_preview(path, max_side)
    image = to_rgb_or_l(image)
    # reducing_gap=1.0 lets Pillow pre-shrink by whole factors first: ~4x cheaper than plain LANCZOS
    image.thumbnail((max_side, max_side), _lanczos(), reducing_gap=1.0)
    return _encode_within(image, max_bytes)


def contact_sheet(tiles: list[tuple[str, Path]], *, side: int = 200, max_bytes: int = 40_000,
                  skipped: list[str] | None = None) -> tuple[bytes, str] | None:
    """Several images (or videos' poster frames) side by side, each labelled, as one preview within
    `max_bytes`: up to 4 per row, the sheet shrunk as a whole until it fits. A file that cannot be
    shown is left out and named in `skipped`; None when none can."""
    from PIL import Image, ImageDraw

    if side < _MIN_SIDE or max_bytes < 1024:
        raise InvalidParameterError(f"contact_sheet needs side >= {_MIN_SIDE} and max_bytes >= 1024")
    shown: list[tuple[str, Image.Image]] = []
    for label, path in tiles:
        try:
            if is_video_mime(sniff_mime(path)):
                tile = cast("Image.Image", poster_frame(path))
            else:
                check_image(path, label)  # a decompression bomb is named, never decoded
                tile = _load_for_preview(path, side)
            tile = to_rgb_or_l(tile).convert("RGB")
            tile.thumbnail((side, side), _lanczos(), reducing_gap=1.0)
            shown.append((label, tile))
        except Exception as exc:  # one bad file must never cost the others their preview
            if skipped is not None:
                skipped.append(f"{label} cannot be shown ({exc})")
    if not shown:
        return None
    cols = min(4, len(shown))
    rows = -(-len(shown) // cols)
    sheet = Image.new("RGB", (cols * side, rows * (side + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, tile) in enumerate(shown):
        x, y = (i % cols) * side, (i // cols) * (side + 16)
        sheet.paste(tile, (x + (side - tile.width) // 2, y + (side - tile.height) // 2))
        draw.text((x + 4, y + side + 2), label[:32], fill="black")
    return _encode_within(sheet, max_bytes)


def has_alpha(path: Path) -> bool:
    """Whether an image file carries transparency (an alpha channel or a transparent palette entry)."""
    with _open_image(path) as im:
        return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _open_image(path: Path) -> Image.Image:
    """Image.open with Pillow's refusals turned into InputFileError."""
    from PIL import Image

    require_file(path)
    try:
        return Image.open(path)
    except Image.DecompressionBombError as e:
        raise InputFileError(f"{path} is too large to open safely ({e}); resize it first") from e
    except (OSError, SyntaxError, ValueError) as e:
        mime = sniff_mime(path)
        if is_image_mime(mime):
            raise InputFileError(
                f"{path} looks like {mime} but cannot be opened ({e}); it is damaged, "
                "incomplete or a variant Pillow cannot read. Download or generate it again, "
                "or convert it to PNG or JPEG."
            ) from e
        looks = f"its bytes look like {mime}" if mime else "its format is not recognised"
        raise InputFileError(
            f"{path} is not a readable image ({looks}); "
            "pass a PNG, JPEG, WebP, GIF, BMP, TIFF or AVIF file"
        ) from e


def _load_for_preview(path: Path, max_side: int) -> Image.Image:
    """Decode the first frame, upright, at no more than ~2x the preview size when the
    format can shrink while decoding (JPEG), which makes big photos cheap."""
    from PIL import Image, ImageOps

    with _open_image(path) as im:
        try:
            im.draft(None, (max_side, max_side))
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # a copy of a big photo is not free
            return im
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise InputFileError(
                f"{path} could not be decoded ({e}); it is damaged or incomplete. "
                "Download or generate it again."
            ) from e


def _encode_within(image: Image.Image, max_bytes: int) -> tuple[bytes, str]:
    """JPEG at the best quality that fits `max_bytes`, else WebP, then smaller sizes.

    JPEG is tried first because it encodes about ten times faster than WebP and almost always
    fits; this sits on every generation call's path, after the paid file is already on disk.
    """
    scaled, scale = image, 1.0
    while True:
        for quality in _QUALITIES:
            jpeg = _encode(scaled, "JPEG", quality)
            if len(jpeg) <= max_bytes:
                return jpeg, "image/jpeg"
            webp = _encode(scaled, "WEBP", quality)
            if len(webp) <= max_bytes:
                return webp, "image/webp"
        if max(scaled.size) <= _MIN_SIDE:
            # Unreachable for budgets >= 1024 bytes; here so the loop always ends.
            raise InvalidParameterError(f"no preview fits in {max_bytes} bytes; raise max_bytes")
        scale *= _SHRINK
        # Resized from the original each time, so repeated shrinking does not compound blur.
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        scaled = image.resize(size, _lanczos())


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    """One encode to bytes; no EXIF or ICC is copied, previews do not need them."""
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, format="JPEG", quality=quality)
    else:
        image.save(buf, format="WEBP", quality=quality, method=2)
    return buf.getvalue()


def _lanczos() -> Image.Resampling:
    from PIL import Image

    return Image.Resampling.LANCZOS

