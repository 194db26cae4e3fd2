"""Image files a person hands aivp (uploads, registered sheets), normalised to PNG."""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import InputFileError
from ..project import Project


def png_bytes(project: Project, path: Path) -> bytes:
    """The file as PNG bytes (converted with Pillow when it is another image format)."""
    from ..media import check_image, sniff_mime

    mime = sniff_mime(path)
    if mime is not None and mime.startswith("image/"):
        check_image(path, project.rel(path))  # a decompression bomb is refused before anything is written
    if mime == "image/png":
        return path.read_bytes()
    if mime is None or not mime.startswith("image/"):
        raise InputFileError(f"{project.rel(path)} is not an image ({mime or 'unknown format'}); pass a PNG, JPEG or WebP.")
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.load()
            upright = ImageOps.exif_transpose(im)
            buf = io.BytesIO()
            (upright if upright.mode in ("RGB", "RGBA", "L", "LA") else upright.convert("RGBA")).save(buf, "PNG")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputFileError(f"{project.rel(path)} could not be read as an image ({exc}).") from None
    return buf.getvalue()
