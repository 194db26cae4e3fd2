"""What a file is, from its first bytes: extensions lie (generated PNGs saved as .jpg are common)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputFileError

# Every signature below sits in the first 64 bytes; the rest covers an ftyp box's list of
# compatible brands, which can run long.
_HEAD = 512

_IMAGE_BRANDS = {b"avif": "image/avif", b"avis": "image/avif"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
# Anything that declares one of these is an ISO-BMFF movie ffmpeg reads as MP4.
_MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
    b"mp41", b"mp42", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"dash", b"MSNV", b"mmp4",
    b"f4v ", b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"XAVC", b"NDAS",
}  # fmt: skip
# Old QuickTime files start with a movie atom instead of ftyp.
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_BMP_DIB_SIZES = {12, 40, 52, 56, 64, 108, 124}

_VIDEO_MIMES = {"video/mp4", "video/quicktime", "video/webm", "video/x-matroska"}


def sniff_mime(path: Path) -> str | None:
    """MIME type from the file's magic bytes, not its extension; None if unknown.

    Knows image/png, jpeg, webp, gif, bmp, tiff, avif (and heic, so callers can say it is
    unsupported), video/mp4, quicktime, webm, x-matroska, audio/wav, mpeg, aac, mp4 (m4a).
    An ISO-BMFF file with only an audio track but a generic brand reads as video/mp4; probe it
    to be sure. Raises InputFileError if the file is missing or unreadable.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except IsADirectoryError:
        raise InputFileError(f"{path} is a folder; pass the path of a file inside it") from None
    except FileNotFoundError:
        raise InputFileError(f"{path} does not exist; check the path") from None
    except OSError as e:
        raise InputFileError(f"{path} cannot be read ({e.strerror}); check its permissions") from e
    return _sniff_bytes(head)


def sniff_bytes(data: bytes) -> str | None:
    """MIME type from the first bytes of data held in memory (a decoded data: URI); None if unknown."""
    return _sniff_bytes(data[:_HEAD])


def _sniff_bytes(head: bytes) -> str | None:
    """The MIME type for a file's first bytes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav"}.get(head[8:12])
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if _is_bmp(head):
        return "image/bmp"
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    if head[4:8] in _QT_ATOMS:
        return "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # EBML: WebM is the Matroska profile that names itself "webm" in its DocType.
        if b"webm" in head[:64]:
            return "video/webm"
        return "video/x-matroska" if b"matroska" in head[:64] else None
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; the layer bits tell MP3 (layer III..I) from ADTS AAC (00).
        layer = (head[1] >> 1) & 0b11
        if layer == 0 and head[1] & 0xF6 == 0xF0:
            return "audio/aac"
        if layer != 0 and head[1] & 0x18 != 0x08:  # 0x08 is the reserved MPEG version
            return "audio/mpeg"
    return None


def _is_bmp(head: bytes) -> bool:
    """True for a BMP header; "BM" alone also starts plenty of text files."""
    if len(head) < 18 or head[:2] != b"BM":
        return False
    return head[6:10] == b"\x00\x00\x00\x00" and int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES


def _sniff_ftyp(head: bytes) -> str | None:
    """Classify an ISO-BMFF file by its major and compatible brands."""
    size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    end = min(len(head), size if size >= 16 else 16)
    brands = {major, *(head[i : i + 4] for i in range(16, end - 3, 4))}
    if major in _IMAGE_BRANDS:
        return _IMAGE_BRANDS[major]
    if major in _HEIF_BRANDS:
        # A HEIF container is AVIF when it lists the avif brand (mif1 + avif is common).
        return "image/avif" if brands & _IMAGE_BRANDS.keys() else "image/heic"
    if major == b"qt  ":
        return "video/quicktime"
    if major in _AUDIO_BRANDS:
        return "audio/mp4"
    if brands & _MP4_BRANDS:
        return "video/mp4"
    return None


def is_image_mime(m: str | None) -> bool:
    """True for any image/* type."""
    return m is not None and m.startswith("image/")


def is_video_mime(m: str | None) -> bool:
    """True for the video containers aivp can decode (mp4, mov, webm, mkv)."""
    return m in _VIDEO_MIMES
