"""Poster frames: one representative picture of a video, as a PIL image or written to a file.

A module of its own so that images.py and video.py never import each other: a poster needs
probing (video.py) and the image writer (_util.py), and `thumbnail` (images.py) previews a video
by its poster. The imports run one way: images -> poster -> video -> _util.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputFileError
from ._util import open_video, save_image_atomically, video_stream
from .video import probe_video

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream
    from PIL import Image

_POSTER_AT = 0.10  # of the duration: past fade-ins and black first frames, still the opening shot


def poster_frame(video: Path, out: Path | None = None, *, at_s: float | None = None) -> Image.Image | Path:
    """A representative frame: at `at_s`, by default 10% into the clip, clamped into it.

    Falls back to the first frame if seeking fails. Applies the rotation flag. With `out`,
    writes a PNG/JPEG/WebP chosen by suffix atomically (temp file + os.replace) and returns
    `out`; without, returns the PIL image. Raises InputFileError for unreadable videos.
    """
    info = probe_video(video)
    target = info.duration_s * _POSTER_AT if at_s is None else at_s
    last_frame_at = max(0.0, info.duration_s - (1 / info.fps if info.fps else 0.0))
    target = min(max(0.0, target), last_frame_at)
    image = _frame_image(video, target)
    if image is None:
        # Seeking is unreliable in files without an index; the first frame needs none.
        image = _frame_image(video, 0.0)
    if image is None:
        raise InputFileError(f"{video} has no decodable video frame. Download or generate it again.")
    if out is None:
        return image
    return save_image_atomically(image, Path(out))


def _frame_image(video: Path, target_s: float) -> Image.Image | None:
    """The frame on screen at `target_s` as an upright RGB image, or None if seeking or
    decoding failed."""
    import av

    with open_video(video) as container:
        stream = video_stream(container, video)
        try:
            frame = _frame_at(container, stream, target_s)
        except av.FFmpegError:
            return None
        if frame is None:
            return None
        image: Image.Image = frame.to_image()
        # The display matrix turns counter-clockwise, as does Image.rotate.
        return image.rotate(frame.rotation, expand=True) if frame.rotation else image


def _frame_at(container: InputContainer, stream: VideoStream, target_s: float) -> VideoFrame | None:
    """The frame on screen `target_s` seconds into the clip (None if seeking found
    nothing): seek to the keyframe before it, then decode forward."""
    start = stream.start_time or 0
    if stream.time_base is None:
        return None
    # A thousandth of a tick of slack so a time computed as 1/3 s still hits its frame.
    target = start + int(target_s / stream.time_base + 1e-3)
    if target > start:
        container.seek(target, stream=stream, backward=True)
    shown = None
    for frame in container.decode(stream):
        if frame.pts is None or frame.pts == target:
            return frame
        if frame.pts > target:
            return shown if shown is not None else frame
        shown = frame
    return shown  # target is inside the last frame
