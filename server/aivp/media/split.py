"""Frame-accurate splitting of one video into clips (a multi-shot render into its shots)."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputFileError, InvalidParameterError
from ._util import atomic_replace, open_video, reason, temp_beside, unlink_quietly, video_stream
from .video import VideoInfo, probe_video

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.audio.resampler import AudioResampler
    from av.audio.stream import AudioStream
    from av.container import InputContainer, OutputContainer
    from av.packet import Packet
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

# MP4 and MOV only: their edit lists hide AAC's encoder delay; Matroska would play 21 ms
# of priming silence at the head of every part and shift the sound against the picture.
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}
_X264 = {"crf": "18", "preset": "fast"}
_AAC_BIT_RATE = 192_000


def split_video(src: Path, cuts_s: list[float], outs: list[Path]) -> list[VideoInfo]:
    """Cut `src` at `cuts_s` (seconds, strictly increasing, inside the clip) into len(outs) clips.

    Frame-accurate: video is re-encoded with libx264 (yuv420p, same size and fps, CRF 18,
    preset fast), so each part starts on its own keyframe; the first frame shown at or after
    a cut starts the next part. Audio is re-encoded to AAC and cut at the same instants, so
    it stays in sync. Each part is written to a temp file beside it, and all are renamed into
    place only when every part is complete; on any error no output or temp file is left.
    Existing files at `outs` are replaced. Returns the probe of each part.
    """
    src = Path(src)
    outs = [Path(o) for o in outs]
    _check_outs(src, cuts_s, outs)
    with open_video(src) as container:
        stream = video_stream(container, src)
        starts, rotation = _part_starts(container, stream, cuts_s, src)
    tmps = [temp_beside(o) for o in outs]
    try:
        _encode_parts(src, starts, rotation, tmps)
        for tmp, out in zip(tmps, outs):
            atomic_replace(tmp, out)
    finally:
        for tmp in tmps:
            unlink_quietly(tmp)
    return [probe_video(o) for o in outs]


def _check_outs(src: Path, cuts_s: list[float], outs: list[Path]) -> None:
    """Refuse bad arguments before any decoding, with the fix in the message."""
    if not outs:
        raise InvalidParameterError("split_video needs at least one output path")
    if len(cuts_s) != len(outs) - 1:
        raise InvalidParameterError(
            f"{len(outs)} outputs need {len(outs) - 1} cut times (one between each pair), "
            f"got {len(cuts_s)}"
        )
    if not all(math.isfinite(c) for c in cuts_s):
        raise InvalidParameterError(f"cut times must be finite numbers of seconds, got {cuts_s}")
    if any(b <= a for a, b in zip(cuts_s, cuts_s[1:])):
        raise InvalidParameterError(f"cut times must be strictly increasing, got {cuts_s}")
    resolved = [o.resolve() for o in outs]
    if len(set(resolved)) != len(resolved):
        raise InvalidParameterError("output paths must all be different")
    if src.resolve() in resolved:
        raise InvalidParameterError(f"{src.name} cannot be both the source and an output")
    for out in outs:
        if out.suffix.lower() not in _FORMATS:
            raise InvalidParameterError(f"cannot write {out.name}: use a .mp4, .m4v or .mov name")
        if not out.parent.is_dir():
            raise InputFileError(f"folder {out.parent} does not exist; create it first")
        if out.is_dir():
            raise InputFileError(f"{out} is a folder; choose a file name for the clip")


def _part_starts(
    container: InputContainer, stream: VideoStream, cuts_s: list[float], src: Path
) -> tuple[list[int], int]:
    """(pts of the first frame of each part, the rotation flag), from packet timestamps and
    the first frame only; validates that every cut is inside the clip and every part gets
    at least one frame."""
    import av

    pts: list[int] = []
    rotation: int | None = None
    for packet in container.demux(stream):
        # Packets an edit list discards never come out of the decoder, so they start no part.
        if packet.size and packet.pts is not None and not packet.is_discard:
            pts.append(packet.pts)
        if rotation is None:
            try:
                for frame in packet.decode():
                    rotation = int(frame.rotation or 0)
            except av.FFmpegError:
                rotation = 0  # the encoding pass reports damage with a better message
    pts.sort()
    if not pts:
        raise InputFileError(f"{src} has no timestamped video frames; convert it to MP4 (H.264) first")
    tb = stream.time_base
    if tb is None:
        raise InputFileError(f"{src} has a video stream without a time base; convert it to MP4 (H.264) first")
    times = [float((p - pts[0]) * tb) for p in pts]
    step = times[1] - times[0] if len(times) > 1 else 0.0
    duration = times[-1] + step
    starts = [0]
    for cut in cuts_s:
        if not 0 < cut < duration:
            raise InvalidParameterError(
                f"cut at {cut:g} s is outside the clip; cuts must lie between 0 and {duration:.3f} s"
            )
        # A microsecond of slack so a cut typed as 1.0 still lands on the frame at 1.0 s.
        starts.append(bisect_left(times, cut - 1e-6))
    for i, (a, b) in enumerate(zip(starts, [*starts[1:], len(pts)])):
        if b <= a:
            raise InvalidParameterError(
                f"part {i + 1} would have no frames; cuts {cuts_s} must be at least one frame "
                f"({step:.3f} s) apart and before the last frame"
            )
    return [pts[i] for i in starts], rotation or 0


def _encode_parts(src: Path, starts: list[int], rotation: int, tmps: list[Path]) -> None:
    """One decoding pass over `src`, routing each video and audio frame to its part."""
    import av

    with open_video(src) as container:
        vin = container.streams.video[0]
        vin.thread_type = "AUTO"
        ain = container.streams.audio[0] if container.streams.audio else None
        writer = _Writer(vin, ain, tmps, starts, rotation)
        streams = [s for s in (vin, ain) if s is not None]
        try:
            for packet in container.demux(*streams):
                try:
                    frames = packet.decode()
                except av.FFmpegError as e:
                    raise InputFileError(
                        f"{src} could not be decoded ({reason(e)}); it is damaged. "
                        "Download or generate it again."
                    ) from e
                for frame in frames:
                    if isinstance(frame, av.VideoFrame):
                        writer.video(frame)
                    elif isinstance(frame, av.AudioFrame):
                        writer.audio(frame)
            writer.finish()
        finally:
            writer.close()
    missing = [i + 1 for i, n in enumerate(writer.frames) if n == 0]
    if missing:
        raise InputFileError(f"{src}: parts {missing} got no decodable frames; the source is damaged")


class _Writer:
    """The open outputs of a split: each part's container is opened on its first frame and
    its encoders flushed as soon as the stream moves past it, so only one x264 lookahead
    is ever held in memory."""

    def __init__(
        self, vin: VideoStream, ain: AudioStream | None, tmps: list[Path], starts: list[int], rotation: int
    ) -> None:
        self.vin, self.ain, self.tmps, self.starts, self.rotation = vin, ain, tmps, starts, rotation
        n = len(tmps)
        self.containers: list[OutputContainer | None] = [None] * n
        self.vouts: list[VideoStream | None] = [None] * n
        self.aouts: list[AudioStream | None] = [None] * n
        self.frames = [0] * n
        self.samples = [0] * n
        self.vpart = self.apart = 0
        self._next_sample = 0  # where an audio frame without pts starts
        cc = vin.codec_context
        # libx264 with yuv420p needs even sides; an odd source loses its last row/column.
        self.width, self.height = cc.width - cc.width % 2, cc.height - cc.height % 2
        self.rate = vin.average_rate or vin.guessed_rate or Fraction(24)
        if ain is not None:
            self.sample_rate = ain.codec_context.sample_rate
            tb = vin.time_base
            assert tb is not None  # checked when the cut points were computed
            self.start_samples = [round(s * tb * self.sample_rate) for s in starts]
        self.resampler: AudioResampler | None = None

    def video(self, frame: VideoFrame) -> None:
        """Send one decoded frame to the part its pts belongs to."""
        import av

        if frame.pts is None or frame.pts < self.starts[0]:
            return
        part = bisect_right(self.starts, frame.pts) - 1
        while self.vpart < part:
            self._flush_video(self.vpart)
            self.vpart += 1
        stream = self._video_out(part)
        if frame.format.name != "yuv420p" or (frame.width, frame.height) != (self.width, self.height):
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        frame.pts = (frame.pts or 0) - self.starts[part]
        frame.time_base = self.vin.time_base
        # libx264 obeys the frame type it is handed, so a decoded frame would drag the
        # source's I/P/B pattern along; NONE lets x264 choose.
        frame.pict_type = av.video.frame.PictureType.NONE
        self._mux(part, stream.encode(frame))
        self.frames[part] += 1

    def audio(self, frame: AudioFrame) -> None:
        """Convert to planar float, then split the samples at the parts' start instants."""
        import av

        if frame.pts is not None and frame.time_base is not None:
            first = round(frame.pts * frame.time_base * self.sample_rate)
        else:
            first = self._next_sample
        if frame.format.name != "fltp":
            if self.resampler is None:
                self.resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=self.sample_rate)
            converted = self.resampler.resample(frame)
        else:
            converted = [frame]
        for piece in converted:
            self._route_audio(piece, first)
            first += piece.samples
        self._next_sample = first

    def _route_audio(self, frame: AudioFrame, first: int) -> None:
        end = first + frame.samples
        bounds = [*self.start_samples, math.inf]
        for part in range(len(self.tmps)):
            lo, hi = max(first, bounds[part]), min(end, bounds[part + 1])
            if lo >= hi:
                continue
            while self.apart < part:
                self._flush_audio(self.apart)
                self.apart += 1
            piece = frame if (lo, hi) == (first, end) else _slice(frame, int(lo - first), int(hi - first))
            piece.pts = self.samples[part]
            piece.time_base = Fraction(1, self.sample_rate)
            self.samples[part] += piece.samples
            self._mux(part, self._audio_out(part).encode(piece))

    def finish(self) -> None:
        """Flush every encoder still holding frames and close the parts cleanly."""
        if self.ain is not None and self.resampler is not None:
            for piece in self.resampler.resample(None):
                self._route_audio(piece, self._next_sample)
                self._next_sample += piece.samples
        for part in range(len(self.tmps)):
            self._flush_video(part)
            self._flush_audio(part)
        for part, container in enumerate(self.containers):
            if container is not None:
                container.close()
                self.containers[part] = None

    def close(self) -> None:
        """Release whatever is still open after an error (the temp files are removed later)."""
        for container in self.containers:
            if container is not None:
                try:
                    container.close()
                except Exception:  # noqa: BLE001 - the original error matters, not this one
                    pass

    def _open(self, part: int) -> OutputContainer:
        import av

        container = self.containers[part]
        if container is not None:
            return container
        tmp = self.tmps[part]
        fmt = _FORMATS[tmp.suffix.lower()]
        # faststart puts the index first, so a browser or a preview can play while loading.
        container = av.open(str(tmp), mode="w", format=fmt, options={"movflags": "+faststart"})
        self.containers[part] = container
        v = container.add_stream("libx264", rate=self.rate, options=dict(_X264))
        v.width, v.height, v.pix_fmt = self.width, self.height, "yuv420p"
        v.codec_context.time_base = self.vin.time_base or Fraction(1, 90_000)
        if self.rotation:
            v.set_display_rotation(self.rotation)
        self.vouts[part] = v
        if self.ain is not None:
            acc = self.ain.codec_context
            a = container.add_stream("aac", rate=self.sample_rate)
            a.layout = acc.layout
            a.bit_rate = _AAC_BIT_RATE
            self.aouts[part] = a
        return container

    def _video_out(self, part: int) -> VideoStream:
        self._open(part)
        return self.vouts[part]  # type: ignore[return-value]

    def _audio_out(self, part: int) -> AudioStream:
        self._open(part)
        return self.aouts[part]  # type: ignore[return-value]

    def _flush_video(self, part: int) -> None:
        stream = self.vouts[part]
        if stream is not None:
            self._mux(part, stream.encode(None))
            self.vouts[part] = None

    def _flush_audio(self, part: int) -> None:
        stream = self.aouts[part]
        if stream is not None:
            self._mux(part, stream.encode(None))
            self.aouts[part] = None

    def _mux(self, part: int, packets: list[Packet[Any]]) -> None:
        container = self.containers[part]
        assert container is not None
        container.mux(packets)


def _slice(frame: AudioFrame, a: int, b: int) -> AudioFrame:
    """Samples [a, b) of a planar float frame, as a new frame."""
    import av

    out = av.AudioFrame(format="fltp", layout=frame.layout.name, samples=b - a)
    out.sample_rate = frame.sample_rate
    width = frame.format.bytes
    for src, dst in zip(frame.planes, out.planes):
        dst.update(bytes(src)[a * width : b * width])
    return out
