"""Placeholder clips: real H.264 MP4s that pan and zoom over the start frame (or a card).

Small and quick on purpose (480 px on the long side, 24 fps, x264 "fast"): a 5 s clip encodes in
well under a second, and it still decodes, probes and splits like a real one. PyAV and Pillow are
imported lazily, as in `render`.
"""

from __future__ import annotations

import array
import io
import math
from typing import TYPE_CHECKING

from .render import cover, decode_image, font

if TYPE_CHECKING:
    from PIL.Image import Image

FPS = 24
SAMPLE_RATE = 48000
AAC_FRAME = 1024
# 9 whole cycles per AAC frame, so one block of samples repeats seamlessly (~422 Hz, quiet)
_TONE_HZ = 9 * SAMPLE_RATE / AAC_FRAME
_ZOOM = 1.25  # the canvas is this much larger than the frame; the camera moves inside it


def first_frame(data: bytes) -> Image | None:
    """The first frame of a video (or the image itself when `data` is an image), or None."""
    img = decode_image(data)
    if img is not None:
        return img
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as c:
            for frame in c.decode(video=0):
                image: Image = frame.to_image()
                return image
    except (av.error.FFmpegError, IndexError, ValueError):
        return None
    return None


def _tone_block() -> bytes:
    samples = array.array("f", (0.05 * math.sin(2 * math.pi * _TONE_HZ * k / SAMPLE_RATE) for k in range(AAC_FRAME)))
    return samples.tobytes()


def render_video(*, size: tuple[int, int], duration_s: float, base: Image, end: Image | None, audio: bool,
                 label: str) -> bytes:
    """An MP4 of exactly round(duration_s * 24) frames at `size`, with a quiet AAC tone if `audio`."""
    import av
    from PIL import Image as PILImage
    from PIL import ImageDraw

    w, h = size
    n = max(1, round(duration_s * FPS))
    canvas_size = (int(w * _ZOOM), int(h * _ZOOM))
    canvas = cover(base, canvas_size)
    end_frame = cover(end, size) if end is not None else None
    label_font, counter_font = font(max(12, h // 14), True), font(max(10, h // 22))

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:  # (+faststart needs a real file to rewrite)
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "fast", "crf": "30"}
        aus = None
        if audio:
            aus = out.add_stream("aac", rate=SAMPLE_RATE)
            aus.layout = "mono"
        for i in range(n):
            t = i / max(1, n - 1)
            # zoom in from the whole canvas to a frame-sized window while panning left to right
            s = _ZOOM - (_ZOOM - 1.0) * t
            cw, ch = canvas_size[0] * s / _ZOOM, canvas_size[1] * s / _ZOOM
            x0 = (canvas_size[0] - cw) * t
            y0 = (canvas_size[1] - ch) / 2
            frame = canvas.resize(size, PILImage.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
            if end_frame is not None and t > 0.6:  # dissolve into the requested last frame
                frame = PILImage.blend(frame, end_frame, min(1.0, (t - 0.6) / 0.4))
            d = ImageDraw.Draw(frame)
            d.rectangle([0, 0, w, int(label_font.size * 1.5)], fill=(250, 204, 21))
            d.text((6, int(label_font.size * 0.2)), label, font=label_font, fill=(20, 20, 20))
            counter = f"frame {i + 1}/{n} · {i / FPS:.2f}s"
            d.text((6, h - int(counter_font.size * 1.5)), counter, font=counter_font, fill=(255, 255, 255),
                   stroke_width=2, stroke_fill=(0, 0, 0))
            vf = av.VideoFrame.from_image(frame)
            vf.pts = i
            for packet in vs.encode(vf):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None:
            block = _tone_block()
            # whole AAC frames only, never longer than the picture: the container lasts duration_s
            for k in range(int(n / FPS * SAMPLE_RATE) // AAC_FRAME):
                af = av.AudioFrame(format="fltp", layout="mono", samples=AAC_FRAME)
                af.planes[0].update(block)
                af.sample_rate = SAMPLE_RATE
                af.pts = k * AAC_FRAME
                for packet in aus.encode(af):
                    out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
    return buf.getvalue()
