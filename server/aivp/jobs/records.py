"""What a finished job leaves beside its files: a JSON record per output and rows in plan.md.

The record follows the storyboard format's fields plus what helps reproduce and audit a result
(native parameters, inputs with their hashes, cost, timings). Outputs in the convention folders
(and any job that names a plan type) get a row in image/plan.md or video/plan.md. The job runner
calls these once the files are in place and before it marks the job completed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from .. import layout
from ..errors import InputError
from ..ledger import JobRow, now_iso
from ..project import Project

log = logging.getLogger("aivp.records")


@dataclass(frozen=True)
class PlanRow:
    kind: str  # image | video: which plan.md
    path: str
    type_: str
    status: str


def _shot_list(row: JobRow, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    files = {o.get("shot"): o["path"] for o in outputs if o.get("split_of")}
    return [{"index": s.index, "prompt": s.prompt, "sent_prompt": s.sent_prompt, "duration": s.duration,
             "file": files.get(s.index)} for s in row.spec.shots]


def build_record(row: JobRow, out: dict[str, Any], index: int, count: int) -> dict[str, Any]:
    """The per-output JSON record (storyboard-format's fields plus what helps reproduce and audit it)."""
    spec = row.spec
    eff = spec.effective
    extra = spec.record
    seed = (row.result or {}).get("seed", eff.get("seed"))
    record: dict[str, Any] = {
        "id": PurePosixPath(out["path"]).stem,
        "type": spec.record_type,
        "file": out["path"],
        "model": spec.model or row.model_id,
        "endpoint": row.endpoint,
        "provider": row.provider,
        "mode": spec.mode,
        "status": row.state,
        "job_id": row.id,
        "request_id": row.request_id,
        "prompt": spec.prompt,
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
        "cost_usd": round((row.charged_usd or 0.0) / max(count, 1), 4),
        "job_cost_usd": row.charged_usd,
        **_sandbox(row, count),
        "estimate": spec.estimate,
        "output": {k: out.get(k) for k in ("sha256", "bytes", "content_type", "width", "height", "duration_s",
                                             "fps", "has_audio", "check", "poster") if out.get(k) is not None},
        "output_index": index,
        "outputs_in_job": count,
        "parameters": row.request,
        "effective_parameters": eff,
        "inputs": list(spec.inputs),
        "warnings": list(spec.warnings),
        "shots": _shot_list(row, row.outputs) if spec.shots else None,
        "elements": extra.get("elements"),
        "started_by": row.started_by,
        "timings": {"created": row.created_at, "submitted": row.submitted_at, "started": row.started_at,
                    "finished": row.finished_at},
        "timestamp": row.finished_at or now_iso(),
    }
    return {k: v for k, v in record.items() if v is not None}


def shot_record(row: JobRow, out: dict[str, Any]) -> dict[str, Any]:
    """The record of one shot cut from a multi-shot clip: what that shot was asked for, and its group.

    The group's job was paid once; its cost stays on the group's record (`group.cost_usd`), so adding up
    records never counts it twice."""
    shot = next((s for s in row.spec.shots if s.index == out.get("shot")), None)
    record: dict[str, Any] = {
        "id": PurePosixPath(out["path"]).stem, "type": "clip", "file": out["path"], "model": row.spec.model or row.model_id,
        "endpoint": row.endpoint, "provider": row.provider, "mode": row.spec.mode, "status": row.state,
        "job_id": row.id, "prompt": shot.prompt if shot else None, "sent_prompt": shot.sent_prompt if shot else None,
        "duration": shot.duration if shot else None, "shot_in_group": out.get("shot"),
        "group": {"file": out.get("split_of"), "job_id": row.id, "cost_usd": row.charged_usd,
                  "shots": len(row.spec.shots), **_sandbox(row, 1)},
        "cost_usd": 0.0,
        "output": {k: out.get(k) for k in ("bytes", "width", "height", "duration_s", "has_audio", "check", "poster")
                   if out.get(k) is not None},
        "elements": row.spec.record.get("elements"),
        "timestamp": row.finished_at or now_iso(),
    }
    return {k: v for k, v in record.items() if v is not None}


def _sandbox(row: JobRow, count: int) -> dict[str, Any]:
    """A sandbox job's record says so, and what the output would have cost on the real provider (its share)."""
    if not row.sandbox:
        return {}
    would = round(row.would_cost_usd / max(count, 1), 4) if row.would_cost_usd is not None else None
    return {"sandbox": True, "would_cost_usd": would}


def output_kind(row: JobRow, out: dict[str, Any]) -> str:
    return str(out.get("kind", "image")) if row.spec.kind == "auto" else row.spec.kind


def write_records(project: Project, row: JobRow) -> list[PlanRow]:
    """Write the record of every output of a finished job (`row` as it will be stored); return its plan rows."""
    spec = row.spec
    main = [o for o in row.outputs if not o.get("split_of")]
    rows: list[PlanRow] = []
    for i, out in enumerate(row.outputs):
        kind = output_kind(row, out)
        if out.get("split_of"):  # a shot cut from a multi-shot clip: its own record, pointing at its group
            project.write_json(project.record_path("video", project.root / out["path"]), shot_record(row, out))
            rows.append(PlanRow("video", out["path"], layout.plan_type(out["path"]), "done"))
            continue
        project.write_json(project.record_path(kind, project.root / out["path"]), build_record(row, out, i, len(main)))
        if spec.plan_type or layout.has_plan_row(out["path"]):
            ok = (out.get("check") or {}).get("ok", True)
            rows.append(PlanRow(kind, out["path"], spec.plan_type or layout.plan_type(out["path"]),
                                "done" if ok else "check-failed"))
    return rows


def target_rows(row: JobRow) -> list[PlanRow]:
    """A job that ends without files still shows in plan.md (failed, canceled, unknown) for its targets."""
    spec = row.spec
    kind = "video" if spec.kind == "video" else "image"
    return [PlanRow(kind, t, spec.plan_type or layout.plan_type(t), row.state) for t in spec.targets or ()
            if spec.plan_type or layout.has_plan_row(t)]


def write_plan_rows(project: Project, row: JobRow, rows: list[PlanRow]) -> None:
    """Set each row in its plan.md, best effort: a table people broke (or wrote in another encoding) is left alone."""
    for r in rows:
        try:
            project.update_plan(r.kind, r.path, type_=r.type_, model=row.endpoint, mode=row.spec.mode, status=r.status)
        except (OSError, ValueError, InputError) as exc:
            log.warning("could not update %s/plan.md for %s: %s", r.kind, r.path, exc)
