"""Videos with PyAV: probing, and proving a download is whole (poster frames are in poster.py)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputFileError
from ._util import open_video, reason, video_stream

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds. width/height are as displayed (a rotation flag is applied);
    frames is None when the container does not count them (WebM)."""

    duration_s: float
    width: int
    height: int
    fps: float
    frames: int | None
    has_audio: bool
    video_codec: str
    audio_codec: str | None


@dataclass(frozen=True)
class VideoCheck:
    """The verdict of verify_video; `message` says what was found either way."""

    ok: bool
    decoded_frames: int
    duration_s: float
    expected_s: float | None
    message: str


def probe_video(path: Path) -> VideoInfo:
    """Container and stream metadata of a video file.

    The duration is the video stream's, else the container's, else (streams cut without an
    index) the end of the last video packet. Decodes one frame to read the rotation flag.
    Raises InputFileError if the file is not a readable video.
    """
    import av

    with open_video(path) as container:
        stream = video_stream(container, path)
        declared = _declared_duration(container, stream)
        frames = stream.frames or None
        if declared is None:
            try:
                duration, counted = _scan_packets(container, stream)
            except av.FFmpegError as e:
                raise InputFileError(
                    f"{path} states no duration and could not be read to its end ({reason(e)}); "
                    "it is damaged. Download or generate it again."
                ) from e
            frames = frames or counted
        else:
            duration = declared
        try:
            if declared is None:
                container.seek(0)  # the scan read to the end
            rotation = _first_frame_rotation(container, stream)
        except av.FFmpegError:
            rotation = 0  # a damaged first frame is verify_video's business, not probe's
        cc = stream.codec_context
        width, height = (cc.height, cc.width) if _quarter_turn(rotation) else (cc.width, cc.height)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else (frames / duration if frames and duration else 0.0)
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(
            duration_s=duration,
            width=width,
            height=height,
            fps=fps,
            frames=frames,
            has_audio=audio is not None,
            video_codec=cc.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )


def verify_video(path: Path, expected_s: float | None = None, tolerance_s: float = 0.5) -> VideoCheck:
    """Decode every video frame (no conversion to RGB) to prove the file is whole.

    Not ok when the file will not open, a frame fails to decode or is flagged corrupt, the
    decoded frames end more than `tolerance_s` before the duration the container declares
    (a truncated download), or the decoded duration is more than `tolerance_s` away from
    `expected_s`. Never raises for a bad video; the message says what was found.
    """
    import av

    try:
        info = probe_video(path)
    except (InputFileError, av.FFmpegError, OSError) as e:
        return VideoCheck(False, 0, 0.0, expected_s, str(e))
    frames = corrupt = 0
    first = end = None
    tb = Fraction(1, 90_000)
    error: Exception | None = None
    try:
        with open_video(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads: several times faster on long clips
            tb = stream.time_base or tb
            step = _frame_step(stream, info.fps)
            for frame in container.decode(stream):
                frames += 1
                corrupt += frame.is_corrupt
                if frame.pts is not None:
                    first = frame.pts if first is None else min(first, frame.pts)
                    stop = frame.pts + (frame.duration or step)
                    end = stop if end is None else max(end, stop)
    except (InputFileError, av.FFmpegError, OSError, MemoryError) as e:
        error = e
    if first is not None and end is not None:
        decoded_s = float((end - first) * tb)
    else:
        decoded_s = frames / info.fps if info.fps else 0.0
    decoded_s = round(decoded_s, 3)
    found = f"{frames} frames, {decoded_s:.2f} s of {info.width}x{info.height} {info.video_codec}"

    def check(ok: bool, message: str) -> VideoCheck:
        return VideoCheck(ok, frames, decoded_s, expected_s, message)

    again = "Download or generate it again."
    if error is not None:
        return check(False, f"{path.name}: decoding failed after {found} ({reason(error)}). {again}")
    if frames == 0:
        return check(False, f"{path.name}: no video frame could be decoded. {again}")
    if corrupt:
        return check(False, f"{path.name}: {corrupt} of {frames} frames are corrupt ({found}). {again}")
    if decoded_s < info.duration_s - tolerance_s:
        return check(
            False,
            f"{path.name} is truncated: decoded {found}, but the file declares "
            f"{info.duration_s:.2f} s. {again}",
        )
    if expected_s is not None and abs(decoded_s - expected_s) > tolerance_s:
        return check(False, f"{path.name}: decoded {found}, but {expected_s:g} s was expected")
    return check(True, f"{path.name}: ok, {found}")


def _declared_duration(container: InputContainer, stream: VideoStream) -> float | None:
    """The duration the file states: the video stream's, else the whole container's."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        import av

        return container.duration / av.time_base
    return None


def _scan_packets(container: InputContainer, stream: VideoStream) -> tuple[float, int]:
    """(duration, packet count) from packet timestamps, without decoding: for raw or
    index-less streams whose container states no duration."""
    first = end = None
    count = 0
    step = _frame_step(stream, float(stream.guessed_rate or 0))
    for packet in container.demux(stream):
        if packet.size == 0:
            continue  # the flush packet at end of stream
        count += 1
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:
            continue
        first = ts if first is None else min(first, ts)
        stop = ts + (packet.duration or step)
        end = stop if end is None else max(end, stop)
    if first is None or end is None or not stream.time_base:
        rate = float(stream.guessed_rate or 0)
        return (count / rate if rate else 0.0), count
    return float((end - first) * stream.time_base), count


def _frame_step(stream: VideoStream, fps: float) -> int:
    """One frame's duration in stream ticks, for frames and packets that carry none."""
    if not fps or not stream.time_base:
        return 0
    return max(1, round(1 / (fps * stream.time_base)))


def _first_frame_rotation(container: InputContainer, stream: VideoStream) -> int:
    """The display-matrix rotation of the first frame (0 if there is none)."""
    frame = _first_frame(container, stream)
    return int(frame.rotation or 0) if frame is not None else 0


def _first_frame(container: InputContainer, stream: VideoStream) -> VideoFrame | None:
    """The first decodable frame, or None."""
    for frame in container.decode(stream):
        return frame
    return None


def _quarter_turn(degrees: int) -> bool:
    return round(degrees) % 180 == 90
