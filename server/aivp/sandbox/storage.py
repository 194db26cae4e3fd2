"""The sandbox's file store: uploads and generated outputs on disk, plus streamed filler files.

Files are addressed by a *key*, the URL path below the CDN base (``files/<random>/<name>``). Huge
outputs (the 1 GiB download benchmark) are never written anywhere: they are a size and a byte
pattern, produced chunk by chunk when someone reads them.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import anyio

CHUNK = 1 << 20
_FILLER_BLOCK = (b"PLACEHOLDER aivp sandbox filler bytes; not a real media file.\n" * 1100)[:65536]


@dataclass
class StoredFile:
    """One file the CDN serves."""

    key: str
    content_type: str
    size: int
    path: Path | None  # None: filler bytes generated on read
    generated: bool  # made by a job (these are what "expired outputs" expire)
    created: float  # time.time()
    expires: float | None = None  # time.time() after which GETs fail (lifecycle header, output TTL)
    request_id: str | None = None

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def safe_name(name: str | None, default: str = "upload.bin") -> str:
    """A file name that is safe as one URL path segment and one path on disk."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or default
    return name[:120]


def guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def filler(start: int, end: int) -> bytes:
    """Bytes `start`..`end` (exclusive) of the filler pattern; the same offset always gives the same byte."""
    n = len(_FILLER_BLOCK)
    out = bytearray()
    pos = start
    while pos < end:
        off = pos % n
        take = min(n - off, end - pos)
        out += _FILLER_BLOCK[off : off + take]
        pos += take
    return bytes(out)


class FileStore:
    """Files on disk under `root`, indexed by key."""

    def __init__(self, root: Path):
        self.root = root
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()

    def new_key(self, name: str, prefix: str = "") -> str:
        # real fal URLs look like files/<word>/<random>_<name>; a random directory keeps names readable
        return f"files/{prefix}{secrets.token_hex(8)}/{safe_name(name)}"

    def disk_path(self, key: str) -> Path:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, f: StoredFile) -> StoredFile:
        with self._lock:
            self._files[f.key] = f
        return f

    def put_bytes(
        self,
        data: bytes,
        name: str,
        content_type: str | None = None,
        *,
        generated: bool = False,
        key: str | None = None,
        expires: float | None = None,
        request_id: str | None = None,
    ) -> StoredFile:
        key = key or self.new_key(name, "out/" if generated else "")
        path = self.disk_path(key)
        path.write_bytes(data)
        ctype = content_type or guess_type(name)
        return self.add(StoredFile(key, ctype, len(data), path, generated, time.time(), expires, request_id))

    def put_file(self, path: Path, key: str, content_type: str, *, expires: float | None = None) -> StoredFile:
        """Register a file already written to `disk_path(key)` (streamed uploads, assembled multipart)."""
        return self.add(StoredFile(key, content_type, path.stat().st_size, path, False, time.time(), expires))

    def put_filler(self, size: int, name: str, content_type: str, *, request_id: str | None = None) -> StoredFile:
        key = self.new_key(name, "out/")
        return self.add(StoredFile(key, content_type, size, None, True, time.time(), None, request_id))

    def get(self, key: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(key)

    def all(self) -> list[StoredFile]:
        with self._lock:
            return list(self._files.values())

    def read(self, f: StoredFile, limit: int = 64 << 20) -> bytes:
        """The whole file (inputs for rendering); filler files are cut at `limit`."""
        if f.path is None:
            return filler(0, min(f.size, limit))
        return f.path.read_bytes()

    async def iter_range(self, f: StoredFile, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes `start`..`end` (inclusive, like a Range header) in chunks, without holding the file."""
        pos, stop = start, end + 1
        if f.path is None:
            while pos < stop:
                n = min(CHUNK, stop - pos)
                yield filler(pos, pos + n)
                pos += n
                await anyio.sleep(0)  # let other requests run between chunks
            return
        path = f.path
        while pos < stop:
            # The file is opened per chunk, not across the yield: a client that drops the connection leaves
            # this generator unfinished, and an open file inside it would only be closed by the GC.
            chunk = await anyio.to_thread.run_sync(_read_at, path, pos, min(CHUNK, stop - pos))
            if not chunk:
                return
            pos += len(chunk)
            yield chunk


def _read_at(path: Path, pos: int, size: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(pos)
        return fh.read(size)
