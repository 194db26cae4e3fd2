"""Finishing a job: fetch its result, download every file into the project, write the records.

Each file is streamed to a hidden temporary file beside its final name and linked into place only
when complete, so a finished name never holds a partial file. Progress is saved after each file:
a restart in the middle does not download (or name) a finished file twice. Each output gets a JSON
record in image/log or video/log; outputs in the convention folders also get a plan.md row.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from .download import download
from .errors import JobFailed
from .inputs import file_sha256
from .ledger import JobRow, now_iso
from .providers.base import Handle, OutputFile, Provider

if TYPE_CHECKING:
    from .jobs import JobRunner

log = logging.getLogger("aivp.outputs")
EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif", "video/mp4": "mp4",
       "video/quicktime": "mov", "video/webm": "webm"}


async def fetch_outputs(runner: JobRunner, row: JobRow, provider: Provider) -> JobRow:
    ledger, project = runner.ledger, runner.project
    spec = row.spec
    if row.result is None:
        assert row.handle is not None
        result = await provider.result(Handle.from_json(row.handle))
        row = ledger.update(row.id, result=result.output, event="result",
                            detail=None if result.billable_units is None else f"billable_units={result.billable_units:g}")
    assert row.result is not None
    files = provider.outputs(spec["shape"], row.result)
    notes = getattr(provider, "output_warnings", None)
    extra = notes(spec["shape"], row.result) if notes else []
    if extra and not set(extra) <= set(spec.get("warnings", [])):  # e.g. one image of a set refused
        spec = {**spec, "warnings": [*spec.get("warnings", []), *extra]}
        row = ledger.update(row.id, spec=spec)
    if not files:
        keys = ", ".join(sorted(row.result)) or "nothing"
        raise JobFailed(f"{row.provider} finished the job but returned no files (it returned: {keys}).")
    done: list[dict[str, Any]] = list(row.outputs)
    for i, f in enumerate(files):
        if i < len(done) and (project.root / done[i]["path"]).is_file():
            continue
        runner.publish(row, f"downloading {i + 1}/{len(files)}")
        final = _target(runner, row, f, i, len(files))
        tmp = project.temp_beside(final, f"{row.id}-{i}")
        got = await download(runner.client, f.url, tmp, policy=runner.policy)
        try:
            converted = await anyio.to_thread.run_sync(_conform_image, tmp, final) if f.kind == "image" else None
            placed = project.place(tmp, final, overwrite=bool(spec.get("overwrite")))
        finally:
            tmp.unlink(missing_ok=True)  # placed files were linked or moved away; anything left is partial
        info = await anyio.to_thread.run_sync(_inspect, placed, f.kind, _expected_seconds(spec))
        url = f.url if not f.url.startswith("data:") else f"data:{got.content_type or 'image'};sha256={got.sha256}"
        entry = {"path": project.rel(placed), "url": url, "sha256": got.sha256, "bytes": got.size,
                 "content_type": got.content_type or f.content_type, "kind": f.kind, **info}
        if converted:
            entry["converted_from"] = converted
            entry["file_sha256"] = await anyio.to_thread.run_sync(file_sha256, placed)
        st = placed.stat()
        entry["file_bytes"], entry["mtime_ns"] = st.st_size, st.st_mtime_ns  # what "still the same file" means
        done = [*done[:i], entry]
        row = ledger.update(row.id, outputs=done)
    extra = spec.get("extra") or {}
    if extra.get("split") and done and done[0].get("kind") == "video" and len(done) == 1:
        runner.publish(row, "cutting the clip into shots")
        done = [*done, *await anyio.to_thread.run_sync(_split_shots, project, row, done[0])]
        row = ledger.update(row.id, outputs=done)
    cost = _actual_cost(row, done)
    if _has_inline(row.result) or _has_inline(row.handle):  # the files are written: drop the inline bytes
        row = ledger.update(row.id, result=_strip_inline(row.result), handle=_strip_inline(row.handle))
    # Records first, then the state: a job is only 'completed' once everything it owes the project is written
    # (a full disk leaves it 'fetching', and queue_status tries again).
    finished = now_iso()
    final = replace(row, state="completed", cost_usd=cost, finished_at=finished, error=None, error_code=None)
    main = [o for o in done if not o.get("split_of")]
    plan_rows: list[tuple[str, str, str, str]] = []
    for i, out in enumerate(done):
        kind = out.get("kind", "image") if spec["kind"] == "auto" else spec["kind"]
        if out.get("split_of"):  # the group's record lists its shots; a split clip gets a plan row, not a record
            plan_rows.append(("video", out["path"], PurePosixPath(out["path"]).stem, "done"))
            continue
        project.write_json(project.record_path(kind, project.root / out["path"]), build_record(final, out, i, len(main)))
        if spec.get("plan_type") or _in_convention_folder(out["path"]):
            ok = (out.get("check") or {}).get("ok", True)
            plan_rows.append((kind, out["path"], spec.get("plan_type") or PurePosixPath(out["path"]).stem,
                              "done" if ok else "check-failed"))
    row = ledger.update(row.id, state="completed", cost_usd=cost, finished_at=finished, error=None, error_code=None)
    for kind, path, type_, status in plan_rows:
        plan_row(project, kind, path, type_=type_, model=row.endpoint, mode=spec["mode"], status=status)
    runner.publish(row, "done")
    return row


def plan_row(project: Any, kind: str, path: str, **row: str) -> None:
    """A plan.md row, best effort: a table people broke (or wrote in another encoding) is left alone."""
    try:
        project.update_plan(kind, path, **row)
    except (OSError, ValueError) as exc:
        log.warning("could not update %s/plan.md for %s: %s", kind, path, exc)


def _target(runner: JobRunner, row: JobRow, f: OutputFile, index: int, count: int) -> Path:
    spec = row.spec
    ext = _ext(f)
    targets = spec.get("targets") or []
    if targets:
        if index < len(targets):
            return runner.project.output_path(targets[index])
        base = runner.project.output_path(targets[-1])
        return base.with_name(f"{base.stem}-{index + 1}{base.suffix}")
    kind = f.kind if spec["kind"] == "auto" else spec["kind"]
    if (spec.get("extra") or {}).get("default_stem") == "group":
        return _next_group(runner.project.root / "video" / "clips", ext)
    return runner.project.default_output(kind, spec.get("prompt") or "", row.id, ext, index, count)


def _strip_inline(value: Any) -> Any:
    """data: URIs (inline outputs) replaced by their type and hash, for the ledger once the files exist."""
    if isinstance(value, str) and value.startswith("data:") and len(value) > 256:
        head, _, body = value.partition(",")
        return f"{head.split(';')[0]};sha256={hashlib.sha256(body.encode()).hexdigest()}"
    if isinstance(value, dict):
        return {k: _strip_inline(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_inline(v) for v in value]
    return value


def _has_inline(value: Any) -> bool:
    return _strip_inline(value) != value


def _actual_cost(row: JobRow, outputs: list[dict[str, Any]]) -> float:
    """Per-image pricing bills the images that came back (a set may return fewer than asked, or more)."""
    est = row.spec.get("estimate") or {}
    images = [o for o in outputs if not o.get("split_of")]
    if est.get("unit") == "image" and est.get("unit_price") is not None and images:
        return round(float(est["unit_price"]) * len(images), 6)
    return row.estimate_usd


def _next_group(folder: Path, ext: str) -> Path:
    """video/clips/group-NN.<ext>, the first number not taken (place() still never clobbers)."""
    taken = {p.stem for p in folder.glob("group-*")} if folder.is_dir() else set()
    n = 1
    while f"group-{n:02d}" in taken:
        n += 1
    return folder / f"group-{n:02d}.{ext}"


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
    from . import media

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


def _expected_seconds(spec: dict[str, Any]) -> float | None:
    from .catalog.pricing import duration_seconds

    eff = spec.get("effective") or {}
    for key in ("duration", "seconds", "num_seconds"):
        if key in eff:
            return duration_seconds(eff[key])
    return None


def _inspect(path: Path, kind: str, expected_s: float | None) -> dict[str, Any]:
    """Dimensions of an image, or probe + decode check of a video; problems are reported, not hidden."""
    from . import media

    try:
        if kind == "video":
            check = media.verify_video(path, expected_s)
            found = {"duration_s": round(check.duration_s, 3),
                     "check": {"ok": check.ok, "decoded_frames": check.decoded_frames, "message": check.message}}
            if check.ok:  # a broken file would only make the probe's message less specific than verify's
                info = media.probe_video(path)
                found.update(width=info.width, height=info.height, fps=info.fps, has_audio=info.has_audio,
                             poster=_poster(path))
            return found
        w, h = media.image_size(path)
        return {"width": w, "height": h}
    except Exception as exc:  # a file we cannot read is still the paid output: keep it, say so
        return {"check": {"ok": False, "message": f"could not inspect the file: {exc}"}}


def _split_shots(project: Any, row: JobRow, group: dict[str, Any]) -> list[dict[str, Any]]:
    """Cut a multi-shot clip at its shot boundaries, scaled to the clip's real length.

    Each part is re-encoded so it starts exactly at its boundary, audio kept (media.split_video).
    A failure leaves the group clip as the result and says why, instead of failing a paid job.
    """
    from . import media

    shots = (row.spec.get("extra") or {}).get("shots") or []
    src = project.root / group["path"]
    durations = [float(s["duration"]) for s in shots]
    real = float(group.get("duration_s") or sum(durations))
    scale = real / sum(durations) if durations and sum(durations) else 1.0
    cuts, t = [], 0.0
    for d in durations[:-1]:
        t += d * scale
        cuts.append(round(t, 3))
    outs = []
    for s in shots:
        if s.get("output"):
            outs.append(project.output_path(s["output"]))
        else:
            outs.append(src.with_name(f"{src.stem}-shot-{s['index']}{src.suffix}"))
    # a new take asked for (redo, overwrite) replaces the shot clips; otherwise nothing is clobbered
    free = outs if row.spec.get("overwrite") else [_free_name(p) for p in outs]
    try:
        infos = media.split_video(src, cuts, free)
    except Exception as exc:
        group.setdefault("check", {})["split_error"] = f"could not cut the clip into shots: {exc}"
        return []
    parts = []
    for s, path, info in zip(shots, free, infos, strict=True):
        parts.append({"path": project.rel(path), "kind": "video", "split_of": group["path"], "shot": s["index"],
                      "width": info.width, "height": info.height, "duration_s": round(info.duration_s, 3),
                      "has_audio": info.has_audio, "bytes": path.stat().st_size, "url": None, "poster": _poster(path)})
    return parts


def _free_name(path: Path) -> Path:
    """A name that does not exist yet: split clips never clobber either."""
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    return candidate


def _poster(clip: Path) -> str | None:
    """A poster frame beside the clips' folder (video/posters/<stem>.jpg), for review and previews."""
    from . import media

    root = clip.parent.parent  # video/clips/x.mp4 -> video/
    out = root / "posters" / f"{clip.stem}.jpg"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        media.poster_frame(clip, out)
    except Exception as exc:  # a poster is a nicety; the clip is what was paid for
        log.info("no poster for %s: %s", clip.name, exc)
        return None
    return out.relative_to(root.parent).as_posix()


def _in_convention_folder(rel: str) -> bool:
    return rel.startswith(("image/frames/", "image/characters/", "image/locations/", "image/styles/", "video/clips/"))


def _shot_list(extra: dict[str, Any], outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    files = {o.get("shot"): o["path"] for o in outputs if o.get("split_of")}
    return [{**{k: v for k, v in s.items() if k != "output"}, "file": files.get(s["index"])} for s in extra["shots"]]


def build_record(row: JobRow, out: dict[str, Any], index: int, count: int) -> dict[str, Any]:
    """The per-output JSON record (storyboard-format's fields plus what helps reproduce and audit it)."""
    spec = row.spec
    eff = spec.get("effective") or {}
    inputs = spec.get("inputs") or []
    extra = spec.get("extra") or {}
    seed = (row.result or {}).get("seed", eff.get("seed"))
    record: dict[str, Any] = {
        "id": PurePosixPath(out["path"]).stem,
        "type": spec.get("record_type", spec["kind"]),
        "file": out["path"],
        "model": spec.get("model", row.model_id),
        "endpoint": row.endpoint,
        "provider": row.provider,
        "mode": spec.get("mode"),
        "status": row.state,
        "job_id": row.id,
        "request_id": row.request_id,
        "prompt": spec.get("prompt"),
        "negative_prompt": eff.get("negative_prompt"),
        "seed": seed,
        "duration": eff.get("duration"),
        "aspect_ratio": eff.get("aspect_ratio"),
        "resolution": eff.get("resolution"),
        "input_image": extra.get("input_image"),
        "end_image": extra.get("end_image"),
        "character_refs": extra.get("character_refs", []),
        "references": extra.get("references", []),
        "output_url": out.get("url"),
        f"{'video' if out.get('kind') == 'video' else 'image'}_url": out.get("url"),
        "cost_usd": round((row.cost_usd or 0.0) / max(count, 1), 4),
        "job_cost_usd": row.cost_usd,
        "estimate": spec.get("estimate"),
        "output": {k: out.get(k) for k in ("sha256", "bytes", "content_type", "width", "height", "duration_s",
                                             "fps", "has_audio", "check", "poster") if out.get(k) is not None},
        "output_index": index,
        "outputs_in_job": count,
        "parameters": row.request,
        "effective_parameters": eff,
        "inputs": inputs,
        "warnings": spec.get("warnings", []),
        "shots": _shot_list(extra, row.outputs) if extra.get("shots") else None,
        "elements": extra.get("elements"),
        "timings": {"created": row.created_at, "submitted": row.submitted_at, "started": row.started_at,
                    "finished": row.finished_at},
        "timestamp": row.finished_at or now_iso(),
    }
    return {k: v for k, v in record.items() if v is not None}
