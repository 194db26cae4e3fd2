"""Inputs a caller can hand aivp: a project path, an http(s) URL or a data: URI.

A project path is checked by `Project.input_path` (containment, symlinks, `.aivp/`), sniffed by its
bytes and hashed; the job runner uploads it to the provider just before the submit (cached by
hash, so a character sheet used in twenty shots is uploaded once). Records and the ledger never
hold a data: URI body, only its hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import InputFileError
from .project import Project

Expect = Literal["image", "video", "any"]
INLINE_MAX_BYTES = 1024 * 1024  # a data: URI larger than this is uploaded to the provider, not sent inline
_DATA_RE = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I)


@dataclass
class InputRef:
    """One input file or URL, with what the record and the wire each need."""

    raw: str
    kind: Literal["path", "url", "data"]
    path: Path | None = None
    rel: str | None = None
    sha256: str | None = None
    mime: str | None = None
    size: int | None = None
    url: str | None = None  # what is sent: the URL, the data URI, or the upload of the path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def canonical(self) -> str:
        """What identifies the content, for idempotency keys: the hash of a file, or the URL."""
        return f"sha256:{self.sha256}" if self.sha256 else str(self.url)

    def wire(self) -> str:
        if self.url is None:
            raise RuntimeError(f"input {self.raw!r} was not uploaded before the submit")
        return self.url

    def record(self) -> dict[str, Any]:
        """Safe for sidecars and the ledger: no data: URI body."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.rel:
            out["path"] = self.rel
        if self.sha256:
            out["sha256"] = self.sha256
        if self.mime:
            out["mime"] = self.mime
        if self.size is not None:
            out["bytes"] = self.size
        if (self.kind == "url" or (self.kind == "path" and self.url)) and not str(self.url).startswith("data:"):
            out["url"] = self.url  # a provider that takes files inline (BytePlus) never puts their bytes here
        return out

    def short(self) -> str:
        return self.rel or (self.url if self.kind == "url" else f"data:{self.mime};sha256={self.sha256}") or self.raw


def _kind_ok(mime: str | None, expect: Expect) -> bool:
    if expect == "any" or mime is None:
        return True
    return mime.startswith(f"{expect}/")


def resolve_input(project: Project, raw: str, *, expect: Expect, max_bytes: int, what: str = "input") -> InputRef:
    """Turn what a caller passed into an InputRef, refusing anything outside the rules."""
    text = (raw or "").strip()
    if not text:
        raise InputFileError(f"The {what} is empty; pass a project path, an https URL or a data: URI.")
    lower = text.lower()
    if lower.startswith(("http://", "https://")):
        return InputRef(raw=text, kind="url", url=text)
    if lower.startswith("data:"):
        return _data_ref(project, text, expect, max_bytes, what)
    path = project.input_path(text)
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{project.rel(path)} is empty; pass a real {expect} file.")
    if size > max_bytes:
        raise InputFileError(
            f"{project.rel(path)} is {size / 1e6:.0f} MB, above the {max_bytes / 1e6:.0f} MB upload limit "
            "(AIVP_MAX_UPLOAD_MB); shrink it or raise the limit."
        )
    from .media import sniff_mime

    mime = sniff_mime(path)
    if mime is None:
        raise InputFileError(
            f"{project.rel(path)} is not a recognised image or video (checked by its bytes, not its name); "
            "pass a PNG, JPEG, WebP, GIF, MP4, MOV or WebM file."
        )
    if not _kind_ok(mime, expect):
        raise InputFileError(f"The {what} must be an {expect}, but {project.rel(path)} is {mime}.")
    if mime.startswith("image/"):
        from .media import check_image

        check_image(path, project.rel(path))  # a decompression bomb or a broken file is refused before any upload
    return InputRef(raw=text, kind="path", path=path, rel=project.rel(path), sha256=file_sha256(path), mime=mime, size=size)


def _data_ref(project: Project, text: str, expect: Expect, max_bytes: int, what: str) -> InputRef:
    m = _DATA_RE.match(text)
    if not m or not m.group("b64"):
        raise InputFileError(f"The {what} data: URI must look like data:image/png;base64,<base64 bytes>.")
    try:
        body = base64.b64decode(text[m.end():], validate=True)
    except (binascii.Error, ValueError):
        raise InputFileError(f"The {what} data: URI has invalid base64; re-encode the file.") from None
    if len(body) > max_bytes:
        raise InputFileError(f"The {what} data: URI is larger than the upload limit; pass a project path instead.")
    from .media import check_image, sniff_bytes

    said = (m.group("mime") or "").lower() or None
    mime = sniff_bytes(body)  # the bytes decide, not the label
    if mime is None:
        raise InputFileError(f"The {what} data: URI (labelled {said or 'without a type'}) does not hold a recognised "
                             "image or video; encode a PNG, JPEG, WebP or MP4 file.")
    if not _kind_ok(mime, expect):
        raise InputFileError(f"The {what} must be an {expect}, but the data: URI holds {mime}.")
    if mime.startswith("image/"):
        check_image(body, f"The {what} data: URI")
    digest = hashlib.sha256(body).hexdigest()
    if len(body) > INLINE_MAX_BYTES:  # uploaded like a file instead of riding inside the submit body
        path = _spool(project, digest, body)
        return InputRef(raw="data:…", kind="path", path=path, sha256=digest, mime=mime, size=len(body))
    return InputRef(raw="data:…", kind="data", sha256=digest, mime=mime, size=len(body), url=text)


def _spool(project: Project, digest: str, body: bytes) -> Path:
    """A large data: URI's bytes in aivp's private state folder, so the runner uploads them like a file."""
    folder = project.state_dir / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest
    if not path.is_file():
        tmp = folder / f".{digest}.tmp"
        tmp.write_bytes(body)
        tmp.replace(path)
    return path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def map_inputs(value: Any, fn: Any) -> Any:
    """Apply fn to every InputRef inside a payload (dicts and lists), leaving the rest as is."""
    if isinstance(value, InputRef):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_inputs(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [map_inputs(v, fn) for v in value]
    return value


def iter_inputs(value: Any) -> list[InputRef]:
    found: list[InputRef] = []

    def collect(ref: InputRef) -> InputRef:
        found.append(ref)
        return ref

    map_inputs(value, collect)
    return found
