"""Collecting a finished job's files: download each into the project, check it, cut multi-shot clips.

Each file is streamed to a hidden temporary file beside its final name and linked into place only
when complete, so a finished name never holds a partial file. After each file the caller is told
(`save`), so a restart in the middle does not download (or name) a finished file twice. This module
never moves a job's state: it returns what it fetched and the job runner makes the transition.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from .. import layout
from ..download import download
from ..inputs import file_sha256
from ..jobspec import JobSpec
from ..ledger import JobRow
from ..project import Project
from ..providers.base import OutputFile
from ..providers.http import RetryPolicy

log = logging.getLogger("aivp.outputs")
EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif", "video/mp4": "mp4",
       "video/quicktime": "mov", "video/webm": "webm"}


@dataclass(frozen=True)
class Fetched:
    """What a job's files came to: an entry per file (split shots included) and what the job cost."""

    outputs: list[dict[str, Any]]
    cost_usd: float | None


@dataclass(frozen=True)
class Fetcher:
    """Where files go and how they are fetched; `progress` and `save` report back to the runner."""

    project: Project
    client: httpx.AsyncClient
    policy: RetryPolicy
    progress: Callable[[str], None]
    save: Callable[[list[dict[str, Any]]], None]  # the entries so far, after each file


async def fetch_outputs(f: Fetcher, row: JobRow, files: list[OutputFile]) -> Fetched:
    """Download every file of a completed job (skipping ones a previous attempt placed) and cut a group clip."""
    project, spec = f.project, row.spec
    done: list[dict[str, Any]] = list(row.outputs)
    for i, out in enumerate(files):
        if i < len(done) and (project.root / done[i]["path"]).is_file():
            continue
        f.progress(f"downloading {i + 1}/{len(files)}")
        final = _target(project, row, out, i, len(files))
        tmp = project.temp_beside(final, f"{row.id}-{i}")
        got = await download(f.client, out.url, tmp, policy=f.policy)
        try:
            converted = await anyio.to_thread.run_sync(_conform_image, tmp, final) if out.kind == "image" else None
            placed = project.place(tmp, final, overwrite=spec.overwrite)
        finally:
            tmp.unlink(missing_ok=True)  # placed files were linked or moved away; anything left is partial
        info = await anyio.to_thread.run_sync(_inspect, project, placed, out.kind, _expected_seconds(spec))
        url = out.url if not out.url.startswith("data:") else f"data:{got.content_type or 'image'};sha256={got.sha256}"
        entry = {"path": project.rel(placed), "url": url, "sha256": got.sha256, "bytes": got.size,
                 "content_type": got.content_type or out.content_type, "kind": out.kind, **info}
        if converted:
            entry["converted_from"] = converted
            entry["file_sha256"] = await anyio.to_thread.run_sync(file_sha256, placed)
        st = placed.stat()
        entry["file_bytes"], entry["mtime_ns"] = st.st_size, st.st_mtime_ns  # what "still the same file" means
        done = [*done[:i], entry]
        f.save(done)
    if spec.split and done and done[0].get("kind") == "video" and len(done) == 1:
        f.progress("cutting the clip into shots")
        done = [*done, *await anyio.to_thread.run_sync(_split_shots, project, row, done[0])]
        f.save(done)
    return Fetched(done, actual_cost(row, done))


def _target(project: Project, row: JobRow, f: OutputFile, index: int, count: int) -> Path:
    spec = row.spec
    ext = _ext(f)
    targets = spec.targets or ()
    if targets:
        if index < len(targets):
            return project.output_path(targets[index])
        base = project.output_path(targets[-1])
        return base.with_name(f"{base.stem}-{index + 1}{base.suffix}")
    kind = f.kind if spec.kind == "auto" else spec.kind
    if spec.group:
        return _next_group(project, ext)
    return project.root / layout.generated_path(kind, spec.prompt or "", row.id, ext, index, count)


def still_there(project: Project, outputs: list[dict[str, Any]]) -> bool:
    """A job's files are all still there and still its own (not replaced by another job's output)."""
    return bool(outputs) and all(_unchanged(project, o) for o in outputs)


def _unchanged(project: Project, out: dict[str, Any]) -> bool:
    path = project.root / str(out["path"])
    try:
        st = path.stat()
    except OSError:
        return False
    if "mtime_ns" not in out:  # recorded before aivp kept these: the name is all there is
        return path.is_file()
    if not isinstance(out["mtime_ns"], int):
        return False
    if st.st_mtime_ns == out["mtime_ns"] and st.st_size == out.get("file_bytes"):
        return True
    want = out.get("file_sha256") or out.get("sha256")
    if st.st_size != out.get("file_bytes") or not isinstance(want, str):
        return False
    return file_sha256(path) == want  # touched but maybe the same bytes (a copy, a restore)


def strip_inline(value: Any) -> Any:
    """data: URIs (inline outputs) replaced by their type and hash, for the ledger once the files exist."""
    if isinstance(value, str) and value.startswith("data:") and len(value) > 256:
        head, _, body = value.partition(",")
        return f"{head.split(';')[0]};sha256={hashlib.sha256(body.encode()).hexdigest()}"
    if isinstance(value, dict):
        return {k: strip_inline(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_inline(v) for v in value]
    return value


def has_inline(value: Any) -> bool:
    return bool(strip_inline(value) != value)


def actual_cost(row: JobRow, outputs: list[dict[str, Any]]) -> float:
    """Per-image pricing bills the images that came back (a set may return fewer than asked, or more)."""
    est = row.spec.estimate or {}
    images = [o for o in outputs if not o.get("split_of")]
    if est.get("unit") == "image" and est.get("unit_price") is not None and images:
        return round(float(est["unit_price"]) * len(images), 6)
    return row.estimate_usd


def _next_group(project: Project, ext: str) -> Path:
    """video/clips/group-NN.<ext>, the first number not taken (place() still never clobbers)."""
    folder = project.root / layout.CLIPS
    taken = {p.stem for p in folder.glob("group-*")} if folder.is_dir() else set()
    n = 1
    while PurePosixPath(layout.group_clip(n)).stem in taken:
        n += 1
    return project.root / layout.group_clip(n, ext)


def _ext(f: OutputFile) -> str:
    if f.content_type and f.content_type.split(";")[0] in EXT:
        return EXT[f.content_type.split(";")[0]]
    suffix = PurePosixPath(urlsplit(f.url).path).suffix.lstrip(".").lower()
    if suffix in EXT.values() or suffix == "jpeg":
        return "jpg" if suffix == "jpeg" else suffix
    guessed = mimetypes.guess_extension(f.content_type or "") if f.content_type else None
    return (guessed or (".mp4" if f.kind == "video" else ".png")).lstrip(".")


WRITABLE = {".png": ("image/png", "PNG"), ".jpg": ("image/jpeg", "JPEG"), ".jpeg": ("image/jpeg", "JPEG"),
            ".webp": ("image/webp", "WEBP")}


def _conform_image(tmp: Path, final: Path) -> str | None:
    """Re-encode an image whose bytes do not match the extension asked for (JPEG bytes in shot-01-ff.png).

    Returns the original MIME type when it converted, so the record can say so.
    """
    from .. import media

    want = WRITABLE.get(final.suffix.lower())
    got = media.sniff_mime(tmp)
    if want is None or got is None or got == want[0] or not got.startswith("image/"):
        return None
    from PIL import Image

    converted = tmp.with_name(tmp.name + ".conv")
    with Image.open(tmp) as im:
        im.load()
        out = im.convert("RGB") if want[1] == "JPEG" and im.mode not in ("RGB", "L") else im
        out.save(converted, want[1], **({"quality": 95} if want[1] in ("JPEG", "WEBP") else {}))
    converted.replace(tmp)
    return got


def _expected_seconds(spec: JobSpec) -> float | None:
    from ..catalog.pricing import duration_seconds

    eff = spec.effective
    for key in ("duration", "seconds", "num_seconds"):
        if key in eff:
            return duration_seconds(eff[key])
    return None


def _inspect(project: Project, path: Path, kind: str, expected_s: float | None) -> dict[str, Any]:
    """Dimensions of an image, or probe + decode check of a video; problems are reported, not hidden."""
    from .. import media

    try:
        if kind == "video":
            check = media.verify_video(path, expected_s)
            found = {"duration_s": round(check.duration_s, 3),
                     "check": {"ok": check.ok, "decoded_frames": check.decoded_frames, "message": check.message}}
            if check.ok:  # a broken file would only make the probe's message less specific than verify's
                info = media.probe_video(path)
                found.update(width=info.width, height=info.height, fps=info.fps, has_audio=info.has_audio,
                             poster=_poster(project, path))
            return found
        w, h = media.image_size(path)
        return {"width": w, "height": h}
    except Exception as exc:  # a file we cannot read is still the paid output: keep it, say so
        return {"check": {"ok": False, "message": f"could not inspect the file: {exc}"}}


def _split_shots(project: Project, row: JobRow, group: dict[str, Any]) -> list[dict[str, Any]]:
    """Cut a multi-shot clip at its shot boundaries, scaled to the clip's real length.

    Each part is re-encoded so it starts exactly at its boundary, audio kept (media.split_video).
    A failure leaves the group clip as the result and says why, instead of failing a paid job.
    """
    from .. import media

    shots = row.spec.shots
    src = project.root / group["path"]
    durations = [s.duration for s in shots]
    real = float(group.get("duration_s") or sum(durations))
    scale = real / sum(durations) if durations and sum(durations) else 1.0
    cuts, t = [], 0.0
    for d in durations[:-1]:
        t += d * scale
        cuts.append(round(t, 3))
    outs = []
    for s in shots:
        if s.output:
            outs.append(project.output_path(s.output))
        else:
            outs.append(src.with_name(f"{src.stem}-shot-{s.index}{src.suffix}"))
    # a new take asked for (redo, overwrite) replaces the shot clips; otherwise nothing is clobbered
    free = outs if row.spec.overwrite else [_free_name(p) for p in outs]
    try:
        infos = media.split_video(src, cuts, free)
    except Exception as exc:
        group.setdefault("check", {})["split_error"] = f"could not cut the clip into shots: {exc}"
        return []
    parts = []
    for s, path, info in zip(shots, free, infos, strict=True):
        # each cut is a file of its own that an agent will use alone: decode it through, like any clip
        check = media.verify_video(path, s.duration * scale)
        parts.append({"path": project.rel(path), "kind": "video", "split_of": group["path"], "shot": s.index,
                      "width": info.width, "height": info.height, "duration_s": round(info.duration_s, 3),
                      "has_audio": info.has_audio, "bytes": path.stat().st_size, "url": None,
                      "check": {"ok": check.ok, "decoded_frames": check.decoded_frames, "message": check.message},
                      "poster": _poster(project, path)})
    return parts


def _free_name(path: Path) -> Path:
    """A name that does not exist yet: split clips never clobber either."""
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    return candidate


def _poster(project: Project, clip: Path) -> str | None:
    """A poster frame beside the clips' folder (video/posters/<stem>.jpg), for review and previews."""
    from .. import media

    rel = layout.poster_path(project.rel(clip))
    try:
        out = project.output_path(rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        media.poster_frame(clip, out)
    except Exception as exc:  # a poster is a nicety; the clip is what was paid for
        log.info("no poster for %s: %s", clip.name, exc)
        return None
    return rel
