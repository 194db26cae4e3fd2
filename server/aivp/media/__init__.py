"""Local media: sniffing, image sizes and previews (Pillow), probing, verifying, poster frames
and frame-accurate splitting of videos (PyAV).

Every function is synchronous and CPU- or disk-bound; the server calls them through
`anyio.to_thread`. Pillow and PyAV are imported inside the functions, never here, because
the server's cold start should not pay for them.
"""

from .images import check_image, contact_sheet, has_alpha, image_size, thumbnail
from .poster import poster_frame
from .sniff import is_image_mime, is_video_mime, sniff_bytes, sniff_mime
from .split import split_video
from .video import VideoCheck, VideoInfo, probe_video, verify_video

__all__ = [
    "VideoCheck",
    "VideoInfo",
    "check_image",
    "contact_sheet",
    "has_alpha",
    "image_size",
    "is_image_mime",
    "is_video_mime",
    "poster_frame",
    "probe_video",
    "sniff_bytes",
    "sniff_mime",
    "split_video",
    "thumbnail",
    "verify_video",
]
