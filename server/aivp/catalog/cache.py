"""The live catalog's disk cache: one JSON file per answer, with when it was fetched and its validators.

Answers of the providers' model APIs (a fal endpoint with its OpenAPI, a price, a search page, a
Replicate model) are kept under AIVP_CACHE_DIR (default ~/.aivp/cache) and used for
AIVP_CATALOG_TTL_S (default one day). An older entry is not thrown away: it is asked for again
with its ETag / Last-Modified where the API gave one, and it is what aivp falls back to when the
platform cannot be reached (the caller says how old it is). A file that cannot be read is treated
as absent; writes go to a temporary file first and are renamed into place, so a reader never sees
half a file, and a cache that cannot be written is only logged: the cache is an optimisation.

This cache lives outside any project (it is shared by every project of the user), so it does not
go through `Project`; nothing from a project is ever written here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("aivp.catalog")

FORMAT = 1  # bump when the stored shape changes: older files are then ignored


@dataclass
class Entry:
    """One cached answer."""

    key: str
    data: Any
    fetched_at: float
    etag: str | None = None
    last_modified: str | None = None

    def age_s(self, now: float | None = None) -> float:
        return max(0.0, (now if now is not None else time.time()) - self.fetched_at)

    def fresh(self, ttl_s: float, now: float | None = None) -> bool:
        return self.age_s(now) < ttl_s


def age_text(seconds: float) -> str:
    """A cache age as a person says it: "40 s", "3 min", "5 h", "2 d"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


@dataclass
class DiskCache:
    """Entries by key in memory, backed by files under `root` (None: memory only)."""

    root: Path | None
    ttl_s: float = 86400.0
    _memory: dict[str, Entry] = field(default_factory=dict)

    def path(self, key: str) -> Path | None:
        if self.root is None:
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        prefix = key.split("/", 1)[0].replace(".", "_") or "misc"
        return self.root / "catalog" / prefix / f"{digest}.json"

    def get(self, key: str) -> Entry | None:
        """The entry, fresh or not (callers decide with `fresh`), or None."""
        found = self._memory.get(key)
        if found is not None:
            return found
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT or raw.get("key") != key:
                return None
            entry = Entry(key, raw["data"], float(raw["fetched_at"]), raw.get("etag"), raw.get("last_modified"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.info("ignoring unreadable cache file %s (%s)", path, type(exc).__name__)
            return None
        self._memory[key] = entry
        return entry

    def put(self, key: str, data: Any, *, etag: str | None = None, last_modified: str | None = None,
            now: float | None = None) -> Entry:
        entry = Entry(key, data, now if now is not None else time.time(), etag, last_modified)
        self._memory[key] = entry
        self._write(entry)
        return entry

    def touch(self, entry: Entry, now: float | None = None) -> Entry:
        """The platform said "not modified": the same data is fresh again."""
        return self.put(entry.key, entry.data, etag=entry.etag, last_modified=entry.last_modified, now=now)

    def forget(self, key: str) -> None:
        self._memory.pop(key, None)
        path = self.path(key)
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass

    def _write(self, entry: Entry) -> None:
        path = self.path(entry.key)
        if path is None:
            return
        body = json.dumps({"format": FORMAT, "key": entry.key, "fetched_at": entry.fetched_at, "etag": entry.etag,
                           "last_modified": entry.last_modified, "data": entry.data}, separators=(",", ":"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(body)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # a read-only home must not break a call: the entry stays in memory
            log.warning("could not write the catalog cache %s: %s", path, exc)
