"""Helpers shared by the media modules: input checks, temp files, opening containers, writing images.

Everything two media modules both need lives here, so that no media module imports another
one sideways (images.py and video.py once imported each other for a PNG writer and a poster).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..errors import InputFileError, InvalidParameterError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream
    from PIL import Image

_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def require_file(path: Path) -> Path:
    """Return `path` if it is an existing regular file, else raise InputFileError."""
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; pass the path of a file inside it")
    if not path.is_file():
        raise InputFileError(f"{path} does not exist; check the path")
    return path


def temp_beside(out: Path) -> Path:
    """A hidden, unique temp path in `out`'s folder with `out`'s suffix (so muxers and
    encoders still pick the format from it); same folder so os.replace is atomic."""
    return out.with_name(f".{out.stem}.{secrets.token_hex(4)}.tmp{out.suffix}")


def unlink_quietly(path: Path) -> None:
    """Remove a temp file if it is there; cleanup must not hide the original error."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def open_video(path: Path) -> Iterator[InputContainer]:
    """Open a video with PyAV, turning FFmpeg's refusal (and images, which FFmpeg would
    happily open as one-frame videos) into an InputFileError."""
    import av

    from .sniff import is_image_mime, sniff_mime

    mime = sniff_mime(path)
    if is_image_mime(mime):
        raise InputFileError(f"{path} is an image ({mime}), not a video; pass a video file")
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as e:
        raise InputFileError(_NOT_A_VIDEO.format(path=path, reason=reason(e))) from e
    try:
        # FFmpeg picks its image demuxers by file extension alone, so a text file named
        # .png opens; nothing in it is a video.
        name = container.format.name
        if name == "image2" or name.endswith("_pipe"):
            raise InputFileError(_NOT_A_VIDEO.format(path=path, reason="no video container found"))
        yield container
    finally:
        container.close()


_NOT_A_VIDEO = (
    "{path} cannot be read as a video ({reason}); it is damaged, incomplete or not a video. "
    "Download or generate it again, or convert it to MP4 (H.264)."
)


def video_stream(container: InputContainer, path: Path) -> VideoStream:
    """The first video stream, or an InputFileError for audio-only and data files."""
    if not container.streams.video:
        raise InputFileError(f"{path} has no video stream; pass a video file (MP4, MOV, WebM)")
    return container.streams.video[0]


def reason(e: Exception) -> str:
    """FFmpeg's own words, without the errno and the repeated file name."""
    strerror = getattr(e, "strerror", None)
    return str(strerror) if strerror else str(e)


def atomic_replace(tmp: Path, out: Path) -> None:
    """Move a finished temp file into place; on failure drop the temp file."""
    try:
        os.replace(tmp, out)
    except OSError:
        unlink_quietly(tmp)
        raise


def save_image_atomically(image: Image.Image, out: Path) -> Path:
    """Write `image` as PNG/JPEG/WebP (chosen by suffix) via a temp file and os.replace."""
    fmt = _SAVE_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InvalidParameterError(f"cannot write {out.name}: use a .png, .jpg or .webp file name")
    if not out.parent.is_dir():
        raise InputFileError(f"folder {out.parent} does not exist; create it first")
    if fmt == "JPEG":
        image = to_rgb_or_l(image)
    tmp = temp_beside(out)
    try:
        image.save(tmp, format=fmt, **({"quality": 92} if fmt != "PNG" else {}))
    except BaseException:
        unlink_quietly(tmp)
        raise
    atomic_replace(tmp, out)
    return out


def to_rgb_or_l(im: Image.Image) -> Image.Image:
    """The image in a mode JPEG and WebP both take (RGB or L), keeping what it looks like."""
    from PIL import Image

    if im.mode in ("RGB", "L"):
        return im
    if im.mode == "1":
        return im.convert("L")
    if im.mode.startswith("I;16"):
        # Pillow clips I;16 -> L at 255, which turns most 16-bit pictures white.
        return im.point(lambda v: v / 256).convert("L")
    if im.mode in ("I", "F"):
        return _stretch_to_l(im)
    if im.mode == "P" and "transparency" not in im.info:
        return im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _stretch_to_l(im: Image.Image) -> Image.Image:
    """32-bit int or float pixels to 8 bits: as is if they fit, as 16-bit if they look like it,
    otherwise stretched between their extremes (depth maps and the like)."""
    lo, hi = cast(tuple[float, float], im.getextrema())  # one band ("I" or "F"): a (min, max) pair
    if lo >= 0 and hi <= 255:
        return im.convert("L")
    if lo >= 0 and hi <= 65535:
        return im.point(lambda v: v / 256).convert("L")
    scale = 255 / (hi - lo)
    return im.point(lambda v: (v - lo) * scale).convert("L")
