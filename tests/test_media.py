"""aivp.media against fixtures made here with Pillow and PyAV (no files checked in, no network)."""

from __future__ import annotations

import io
import math
import os
import struct
import subprocess
import sys
import wave
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from aivp.errors import InputFileError, InvalidParameterError
from aivp.media import (
    VideoInfo,
    image_size,
    is_image_mime,
    is_video_mime,
    poster_frame,
    probe_video,
    sniff_mime,
    split_video,
    thumbnail,
    verify_video,
)

W, H, FPS, SECONDS = 320, 180, 24, 3
BARS = 8  # each frame shows its index in binary as 8 black/white bars


# --- fixture makers -------------------------------------------------------------------------


def index_frame(i: int, size: tuple[int, int] = (W, H)) -> Image.Image:
    """A frame whose bars spell `i` in binary, so tests can tell which frame they got."""
    im = Image.new("RGB", size, (0, 0, 0))
    bar = size[0] // BARS
    for b in range(BARS):
        if i >> b & 1:
            im.paste((255, 255, 255), (b * bar, 0, (b + 1) * bar, size[1]))
    return im


def read_index(im: Image.Image) -> int:
    bar = im.width // BARS
    gray = im.convert("L")
    return sum(1 << b for b in range(BARS) if gray.getpixel((b * bar + bar // 2, im.height // 2)) > 128)


def make_video(
    path: Path,
    seconds: float = SECONDS,
    *,
    audio: bool = True,
    fmt: str | None = None,
    codec: str = "libx264",
    faststart: bool = False,
    rotation: int = 0,
) -> Path:
    """An H.264 (or other codec) video of index frames at 24 fps, with an optional 440 Hz tone."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=fmt, options=options) as out:
        v = out.add_stream(codec, rate=FPS)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        if codec == "libx264":
            v.options = {"preset": "ultrafast"}
        if rotation:
            v.set_display_rotation(rotation)
        a = None
        if audio:
            # MP4 gets AAC; WebM only takes Opus (or Vorbis), which runs at 48 kHz.
            mp4 = codec == "libx264"
            a = out.add_stream("aac" if mp4 else "libopus", rate=44100 if mp4 else 48000)
            a.layout = "mono"
        for i in range(round(seconds * FPS)):
            frame = av.VideoFrame.from_image(index_frame(i))
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            rate = a.codec_context.sample_rate
            total, pos = round(seconds * rate), 0
            while pos < total:
                n = min(960, total - pos)
                af = av.AudioFrame(format="fltp", layout="mono", samples=n)
                af.sample_rate = rate
                af.pts = pos
                samples = (0.3 * math.sin(2 * math.pi * 440 * (pos + j) / rate) for j in range(n))
                af.planes[0].update(struct.pack(f"<{n}f", *samples))
                out.mux(a.encode(af))
                pos += n
            out.mux(a.encode(None))
    return path


def make_burst_video(path: Path, burst_at: float, seconds: float = 2.0, rate: int = 44100) -> Path:
    """A small video whose soundtrack is silent until a 1 kHz tone starts at `burst_at`."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt, v.options = 64, 36, "yuv420p", {"preset": "ultrafast"}
        a = out.add_stream("aac", rate=rate)
        a.layout = "mono"
        for i in range(round(seconds * FPS)):
            frame = av.VideoFrame.from_image(index_frame(i, (64, 36)))
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        total, pos = round(seconds * rate), 0
        while pos < total:
            n = min(1024, total - pos)
            af = av.AudioFrame(format="fltp", layout="mono", samples=n)
            af.sample_rate, af.pts = rate, pos
            loud = [pos + j >= burst_at * rate for j in range(n)]
            tone = (0.5 * math.sin(2 * math.pi * 1000 * (pos + j) / rate) if loud[j] else 0.0 for j in range(n))
            af.planes[0].update(struct.pack(f"<{n}f", *tone))
            out.mux(a.encode(af))
            pos += n
        out.mux(a.encode(None))
    return path


def sound_onset(path: Path) -> float:
    """Seconds until the soundtrack first gets loud."""
    with av.open(str(path)) as c:
        done = 0
        for f in c.decode(audio=0):
            samples = struct.unpack(f"<{f.samples}f", bytes(f.planes[0])[: 4 * f.samples])
            loud = next((j for j, x in enumerate(samples) if abs(x) > 0.1), None)
            if loud is not None:
                return (done + loud) / f.sample_rate
            done += f.samples
    raise AssertionError("no sound")


def make_audio(path: Path, fmt: str, codec: str) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        a = out.add_stream(codec, rate=44100)
        a.layout = "mono"
        af = av.AudioFrame(format="fltp", layout="mono", samples=44100 // 2)
        af.sample_rate, af.pts = 44100, 0
        af.planes[0].update(bytes(4 * (44100 // 2)))
        out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
        return samples / c.streams.audio[0].codec_context.sample_rate


def frame_indices(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [read_index(f.to_image()) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One of every kind of file, made once for the module."""
    d = tmp_path_factory.mktemp("media")
    files = {
        "mp4": make_video(d / "clip.mp4"),
        "silent": make_video(d / "silent.mp4", audio=False, seconds=1),
        "mov": make_video(d / "clip.mov", seconds=0.5, audio=False),
        "webm": make_video(d / "clip.webm", seconds=0.5, codec="libvpx", audio=False),
        "mkv": make_video(d / "clip.mkv", seconds=0.5, audio=False),
        "m4a": make_audio(d / "tone.m4a", "ipod", "aac"),
        "mp3": make_audio(d / "tone.mp3", "mp3", "libmp3lame"),
    }
    rgb = index_frame(5)
    for ext, fmt in [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP"), ("gif", "GIF"),
                     ("bmp", "BMP"), ("tiff", "TIFF"), ("avif", "AVIF")]:  # fmt: skip
        rgb.save(d / f"still.{ext}", format=fmt)
        files[ext] = d / f"still.{ext}"
    with wave.open(str(d / "tone.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(bytes(1600))
    files["wav"] = d / "tone.wav"
    (d / "png_named.jpg").write_bytes((d / "still.png").read_bytes())
    files["png_named_jpg"] = d / "png_named.jpg"
    (d / "notes.png").write_text("just some text, not an image\n")
    files["text_png"] = d / "notes.png"
    (d / "bm.txt").write_text("BM is how this text starts, and it is not a bitmap\n")
    files["bm_text"] = d / "bm.txt"
    return files


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty folder of the test's own (conftest puts a home folder in tmp_path)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


# --- sniffing -------------------------------------------------------------------------------

SNIFFED = {
    "png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif",
    "bmp": "image/bmp", "tiff": "image/tiff", "avif": "image/avif", "mp4": "video/mp4",
    "mov": "video/quicktime", "webm": "video/webm", "mkv": "video/x-matroska",
    "wav": "audio/wav", "mp3": "audio/mpeg", "m4a": "audio/mp4",
    "png_named_jpg": "image/png", "text_png": None, "bm_text": None,
}  # fmt: skip


@pytest.mark.parametrize("kind", SNIFFED)
def test_sniff_mime_reads_magic_bytes_not_extension(media: dict[str, Path], kind: str) -> None:
    assert sniff_mime(media[kind]) == SNIFFED[kind]


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    brands = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(brands)).to_bytes(4, "big") + b"ftyp" + brands + b"\x00" * 16


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (ftyp(b"mif1", b"mif1", b"avif", b"miaf"), "image/avif"),
        (ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
        (ftyp(b"M4A ", b"M4A ", b"isom"), "audio/mp4"),
        (ftyp(b"XYZ1", b"mp42"), "video/mp4"),  # unknown major brand, MP4 compatible
        (ftyp(b"crx ", b"crx "), None),  # Canon raw photos are ISO-BMFF too
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x10mdat", "video/quicktime"),  # pre-ftyp QuickTime
        (b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(32), "audio/aac"),  # ADTS
        (b"\xff\xfb\x90\x64" + bytes(32), "audio/mpeg"),  # MPEG-1 layer III without ID3
        (b"RIFF\x24\x00\x00\x00AVI LIST", None),
        (b"", None),
    ],
)
def test_sniff_mime_headers(work: Path, head: bytes, mime: str | None) -> None:
    (work / "f.bin").write_bytes(head)
    assert sniff_mime(work / "f.bin") == mime


def test_sniff_mime_missing_file_and_folder(work: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        sniff_mime(work / "nope.png")
    with pytest.raises(InputFileError, match="is a folder"):
        sniff_mime(work)


def test_mime_predicates() -> None:
    assert is_image_mime("image/avif") and not is_image_mime("video/mp4") and not is_image_mime(None)
    assert is_video_mime("video/quicktime") and is_video_mime("video/webm")
    assert not is_video_mime("audio/mp4") and not is_video_mime(None)


def test_importing_media_does_not_load_pillow_or_pyav() -> None:
    code = "import sys, aivp.media; print('av' in sys.modules, 'PIL' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


# --- images ---------------------------------------------------------------------------------


def exif_rotated_jpeg(path: Path) -> Path:
    """200x100 stored, red on the left; EXIF orientation 6 shows it 100x200, red on top."""
    im = Image.new("RGB", (200, 100), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(path, exif=exif, quality=95)
    return path


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_image_size_reads_header_and_applies_exif_orientation(media: dict[str, Path], work: Path) -> None:
    assert image_size(media["png"]) == (W, H)
    assert image_size(media["avif"]) == (W, H)
    assert image_size(exif_rotated_jpeg(work / "r.jpg")) == (100, 200)


def test_image_size_refuses_non_images(media: dict[str, Path]) -> None:
    with pytest.raises(InputFileError, match="not a readable image"):
        image_size(media["text_png"])
    with pytest.raises(InputFileError, match="video/mp4"):
        image_size(media["mp4"])


def test_thumbnail_of_large_noise_fits_budget(work: Path) -> None:
    # BMP because writing 36 MB of noise as PNG alone takes a second.
    Image.frombytes("RGB", (4000, 3000), os.urandom(4000 * 3000 * 3)).save(work / "big.bmp")
    # Noise at preview size survives downscaling, so only lower quality and size can fit it.
    Image.frombytes("RGB", (384, 384), os.urandom(384 * 384 * 3)).save(work / "small.png")
    cases = [("big.bmp", 48_000), ("big.bmp", 6_000), ("small.png", 48_000), ("small.png", 6_000)]
    for name, budget in cases:
        data, mime = thumbnail(work / name, max_bytes=budget)
        assert len(data) <= budget, (name, budget)
        im = decode(data)
        assert im.format.lower() == mime.split("/")[1]
        assert max(im.size) <= 384
        assert abs(im.width / im.height - (4 / 3 if name == "big.bmp" else 1)) < 0.02
    assert max(decode(thumbnail(work / "big.bmp")[0]).size) == 384  # fits without shrinking


def test_thumbnail_small_image_keeps_size_and_content(media: dict[str, Path]) -> None:
    data, mime = thumbnail(media["png"])
    im = decode(data)
    assert im.size == (W, H)  # never enlarged
    assert read_index(im) == 5


def test_thumbnail_flattens_transparency_onto_white(work: Path) -> None:
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 50, 100))
    rgba.save(work / "rgba.png")
    rgba.convert("P").save(work / "p.png")
    with Image.open(work / "p.png") as im:
        assert "transparency" in im.info  # a tRNS chunk, not an alpha band
    la = Image.new("LA", (100, 100), (0, 0))
    la.save(work / "la.png")
    for name in ("rgba.png", "p.png", "la.png"):
        im = decode(thumbnail(work / name)[0]).convert("RGB")
        r, g, b = im.getpixel((90, 50))
        assert min(r, g, b) > 235, name  # transparent area is white, not black
    r, g, b = decode(thumbnail(work / "rgba.png")[0]).convert("RGB").getpixel((10, 50))
    assert r > 200 and g < 60


def test_thumbnail_scales_16_bit_instead_of_clipping(work: Path) -> None:
    ramp = Image.new("I;16", (256, 32))
    ramp.putdata([x * 256 for _ in range(32) for x in range(256)])
    ramp.save(work / "ramp16.png")
    with Image.open(work / "ramp16.png") as im:
        assert im.mode.startswith("I;16")
    im = decode(thumbnail(work / "ramp16.png")[0]).convert("L")
    assert im.getpixel((10, 16)) < 30 and 100 < im.getpixel((128, 16)) < 160 and im.getpixel((250, 16)) > 220


def test_thumbnail_applies_exif_orientation(work: Path) -> None:
    im = decode(thumbnail(exif_rotated_jpeg(work / "r.jpg"))[0]).convert("RGB")
    assert im.size == (100, 200)
    top, bottom = im.getpixel((50, 20)), im.getpixel((50, 180))
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_thumbnail_of_video_is_its_poster_frame_within_budget(media: dict[str, Path]) -> None:
    data, mime = thumbnail(media["mp4"], max_side=160, max_bytes=8_000)
    im = decode(data)
    assert len(data) <= 8_000 and mime in ("image/jpeg", "image/webp")
    assert im.size == (160, 90)


def test_thumbnail_refuses_unreadable_files(media: dict[str, Path], work: Path) -> None:
    with pytest.raises(InputFileError, match="not a readable image"):
        thumbnail(media["text_png"])
    with pytest.raises(InputFileError, match="audio"):
        thumbnail(media["wav"])
    jpeg = media["jpg"].read_bytes()
    for name, data in [("header.jpg", jpeg[:100]), ("half.jpg", jpeg[: len(jpeg) // 2])]:
        (work / name).write_bytes(data)
        with pytest.raises(InputFileError, match="damaged"):
            thumbnail(work / name)


# --- probing and verifying ------------------------------------------------------------------


def test_probe_video_reports_streams(media: dict[str, Path]) -> None:
    info = probe_video(media["mp4"])
    assert info == VideoInfo(
        duration_s=pytest.approx(3.0, abs=0.01),  # type: ignore[arg-type]
        width=W, height=H, fps=24.0, frames=72, has_audio=True, video_codec="h264", audio_codec="aac",
    )  # fmt: skip
    silent = probe_video(media["silent"])
    assert (silent.has_audio, silent.audio_codec, silent.frames) == (False, None, 24)
    webm = probe_video(media["webm"])
    assert webm.video_codec == "vp8" and webm.duration_s == pytest.approx(0.5, abs=0.05)


def test_probe_video_without_container_duration_scans_packets(work: Path) -> None:
    # A raw H.264 elementary stream states no duration; timestamps must be counted.
    raw = make_video(work / "raw.h264", seconds=1, audio=False, fmt="h264")
    info = probe_video(raw)
    assert info.frames == 24 and info.duration_s == pytest.approx(1.0, abs=0.05)


def test_probe_video_swaps_sides_for_rotated_video(work: Path) -> None:
    clip = make_video(work / "phone.mp4", seconds=0.5, audio=False, rotation=90)
    info = probe_video(clip)
    assert (info.width, info.height) == (H, W)
    image = poster_frame(clip)
    assert image.size == (H, W)
    # Rotated counter-clockwise: bit 0's bar (the frame's left) ends up at the bottom.
    assert image.convert("L").getpixel((H // 2, W - 5)) > 128


def test_probe_video_refuses_images_and_audio(media: dict[str, Path]) -> None:
    with pytest.raises(InputFileError, match="is an image"):
        probe_video(media["png_named_jpg"])
    with pytest.raises(InputFileError, match="cannot be read as a video"):
        probe_video(media["text_png"])
    with pytest.raises(InputFileError, match="no video stream"):
        probe_video(media["m4a"])


def test_verify_video_ok_and_duration_mismatch(media: dict[str, Path]) -> None:
    good = verify_video(media["mp4"], expected_s=3.0)
    assert good.ok and good.decoded_frames == 72 and good.duration_s == pytest.approx(3.0, abs=0.01)
    assert "ok" in good.message
    short = verify_video(media["mp4"], expected_s=5.0)
    assert not short.ok and "5 s was expected" in short.message and short.decoded_frames == 72


@pytest.mark.parametrize("faststart", [False, True], ids=["index-at-end", "index-first"])
def test_verify_video_reports_truncated_file(work: Path, faststart: bool) -> None:
    clip = make_video(work / "clip.mp4", seconds=2, faststart=faststart)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    check = verify_video(clip)  # must not raise
    assert not check.ok
    assert ("truncated" if faststart else "cannot be read") in check.message
    assert check.decoded_frames < 48


def test_verify_video_reports_missing_and_garbage(media: dict[str, Path], work: Path) -> None:
    assert not verify_video(work / "missing.mp4").ok
    check = verify_video(media["text_png"])
    assert not check.ok and check.decoded_frames == 0 and "cannot be read" in check.message


# --- poster frames --------------------------------------------------------------------------


def test_poster_frame_default_at_ten_percent(media: dict[str, Path]) -> None:
    image = poster_frame(media["mp4"])
    assert isinstance(image, Image.Image) and image.size == (W, H)
    assert read_index(image) == 7  # 0.3 s is inside frame 7 (0.2917 .. 0.3333)


def test_poster_frame_at_time_and_clamped(media: dict[str, Path]) -> None:
    assert read_index(poster_frame(media["mp4"], at_s=2.0)) == 48
    assert read_index(poster_frame(media["mp4"], at_s=99)) == 71
    assert read_index(poster_frame(media["mp4"], at_s=-1)) == 0


def test_poster_frame_writes_file_atomically(media: dict[str, Path], work: Path) -> None:
    out = poster_frame(media["mp4"], work / "poster.png", at_s=1.0)
    assert out == work / "poster.png"
    with Image.open(out) as im:
        assert read_index(im) == 24
    assert poster_frame(media["mp4"], work / "poster.jpg") == work / "poster.jpg"
    with Image.open(work / "poster.jpg") as im:
        assert im.format == "JPEG"
    assert sorted(p.name for p in work.iterdir()) == ["poster.jpg", "poster.png"]
    with pytest.raises(InvalidParameterError, match=".png"):
        poster_frame(media["mp4"], work / "poster.gif")


# --- splitting ------------------------------------------------------------------------------


def test_split_video_is_frame_accurate_with_audio(media: dict[str, Path], work: Path) -> None:
    cuts = [1.0, 2.2]
    outs = [work / f"shot{i}.mp4" for i in range(3)]
    parts = split_video(media["mp4"], cuts, outs)
    assert sorted(p.name for p in work.iterdir()) == ["shot0.mp4", "shot1.mp4", "shot2.mp4"]
    # Frame n is shown from n/24 s; the first frame at or after a cut starts the next part.
    assert [p.frames for p in parts] == [24, 29, 19]
    assert sum(p.frames or 0 for p in parts) == probe_video(media["mp4"]).frames
    expected = [1.0, 1.2, 0.8]
    for part, want, out in zip(parts, expected, outs):
        assert abs(part.duration_s - want) <= 1 / FPS + 1e-6
        assert (part.width, part.height, part.fps, part.video_codec) == (W, H, 24.0, "h264")
        assert part.has_audio and part.audio_codec == "aac"
        assert abs(audio_seconds(out) - part.duration_s) < 0.05
        assert verify_video(out).ok
    assert frame_indices(outs[1])[:2] == [24, 25]  # the cut at 1.0 s starts exactly at frame 24
    assert frame_indices(outs[2])[0] == 53  # 2.2 s falls inside frame 52; frame 53 starts part 3
    with av.open(str(outs[2])) as c:
        first = next(c.demux(video=0))
        assert first.is_keyframe and first.pts == 0


def test_split_video_keeps_sound_in_sync(work: Path) -> None:
    src = make_burst_video(work / "burst.mp4", burst_at=1.5)
    assert sound_onset(src) == pytest.approx(1.5, abs=0.002)
    # 0.99 s falls inside frame 23, so part two starts with frame 24 at 1.0 s; its sound must
    # start there too (not at 0.99 s), putting the tone 0.5 s in.
    split_video(src, [0.99], [work / "a.mp4", work / "b.mp4"])
    assert sound_onset(work / "b.mp4") == pytest.approx(0.5, abs=0.002)


def test_split_video_keeps_rotation(work: Path) -> None:
    clip = make_video(work / "phone.mp4", seconds=1, audio=False, rotation=90)
    parts = split_video(clip, [0.5], [work / "a.mp4", work / "b.mp4"])
    assert [(p.width, p.height) for p in parts] == [(H, W), (H, W)]


def test_split_video_lets_x264_choose_frame_types(work: Path) -> None:
    # libx264 obeys a frame's pict_type; decoded frames carry the source's, which would copy
    # a keyframe every 5 frames (and no B-frames) into every part.
    src = work / "gop5.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "g": "5", "keyint_min": "5"})
        v.width, v.height, v.pix_fmt = 64, 36, "yuv420p"
        still = index_frame(3, (64, 36))
        for i in range(48):
            frame = av.VideoFrame.from_image(still)
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    split_video(src, [1.0], [work / "a.mp4", work / "b.mp4"])
    with av.open(str(work / "b.mp4")) as c:
        types = [f.pict_type for f in c.decode(video=0)]
    assert types.count(av.video.frame.PictureType.I) == 1 and types[0] == av.video.frame.PictureType.I


def test_split_video_without_audio(media: dict[str, Path], work: Path) -> None:
    parts = split_video(media["silent"], [0.5], [work / "a.mp4", work / "b.mov"])
    assert [p.frames for p in parts] == [12, 12]
    assert not any(p.has_audio for p in parts)
    assert sniff_mime(work / "b.mov") == "video/quicktime"


@pytest.mark.parametrize(
    ("cuts", "n_outs", "error", "match"),
    [
        ([1.0], 3, InvalidParameterError, "3 outputs need 2 cut times"),
        ([2.0, 1.0], 3, InvalidParameterError, "strictly increasing"),
        ([1.0, 1.0], 3, InvalidParameterError, "strictly increasing"),
        ([1.0, 3.5], 3, InvalidParameterError, "outside the clip"),
        ([0.0], 2, InvalidParameterError, "outside the clip"),
        ([1.01, 1.03], 3, InvalidParameterError, "part 2 would have no frames"),
        ([2.99], 2, InvalidParameterError, "part 2 would have no frames"),
        ([float("nan")], 2, InvalidParameterError, "finite"),
    ],
)
def test_split_video_refuses_bad_cuts_and_writes_nothing(
    media: dict[str, Path], work: Path, cuts: list[float], n_outs: int, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        split_video(media["mp4"], cuts, [work / f"p{i}.mp4" for i in range(n_outs)])
    assert list(work.iterdir()) == []


def test_split_video_refuses_bad_outputs(media: dict[str, Path], work: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist; create it first"):
        split_video(media["mp4"], [1.0], [work / "a.mp4", work / "missing" / "b.mp4"])
    with pytest.raises(InvalidParameterError, match=".mp4"):
        split_video(media["mp4"], [1.0], [work / "a.mp4", work / "b.gif"])
    with pytest.raises(InvalidParameterError, match="different"):
        split_video(media["mp4"], [1.0], [work / "a.mp4", work / "a.mp4"])
    with pytest.raises(InvalidParameterError, match="both the source"):
        split_video(media["mp4"], [1.0], [work / "a.mp4", media["mp4"]])
    assert list(work.iterdir()) == []


def test_split_video_failure_midway_leaves_nothing(
    media: dict[str, Path], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aivp.media import split

    real_open = split._Writer._open

    def failing_open(self: split._Writer, part: int) -> av.container.OutputContainer:
        if part == 2:
            raise OSError("disk full")
        return real_open(self, part)

    monkeypatch.setattr(split._Writer, "_open", failing_open)
    (work / "shot0.mp4").write_bytes(b"previous take")
    with pytest.raises(OSError, match="disk full"):
        split_video(media["mp4"], [1.0, 2.0], [work / f"shot{i}.mp4" for i in range(3)])
    assert sorted(p.name for p in work.iterdir()) == ["shot0.mp4"]
    assert (work / "shot0.mp4").read_bytes() == b"previous take"


def test_split_video_refuses_unreadable_source(media: dict[str, Path], work: Path) -> None:
    with pytest.raises(InputFileError, match="cannot be read as a video"):
        split_video(media["text_png"], [1.0], [work / "a.mp4", work / "b.mp4"])
    assert list(work.iterdir()) == []


def test_fraction_rates_survive(work: Path) -> None:
    # NTSC-style 30000/1001 fps must come back as 29.97, not rounded to 30.
    path = work / "ntsc.mp4"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=Fraction(30000, 1001))
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        v.options = {"preset": "ultrafast"}
        for i in range(30):
            f = av.VideoFrame.from_image(index_frame(i, (64, 64)))
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    info = probe_video(path)
    assert info.fps == pytest.approx(29.97, abs=0.01) and info.frames == 30
    parts = split_video(path, [0.5], [work / "a.mp4", work / "b.mp4"])
    assert [p.frames for p in parts] == [15, 15]
    assert parts[0].fps == pytest.approx(29.97, abs=0.01)


def test_has_alpha_tells_a_cutout_from_an_opaque_image(tmp_path: Path) -> None:
    from PIL import Image

    from aivp.media import has_alpha

    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "cut.png")
    Image.new("RGB", (8, 8), "white").save(tmp_path / "white.png")
    Image.new("P", (8, 8)).save(tmp_path / "pal.png", transparency=0)
    assert has_alpha(tmp_path / "cut.png") and has_alpha(tmp_path / "pal.png")
    assert not has_alpha(tmp_path / "white.png")
