"""A checked, priced generation request (`JobRequest`), as the domain hands it to the job runner.

`prepare()` (domain/prepare.py) builds it from a tool's arguments; the runner turns it into a ledger
row (idempotency key + native request + `JobSpec`) and a remote job. Nothing here sends anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..catalog.params import Built
from ..catalog.pricing import Estimate
from ..inputs import iter_inputs, map_inputs
from ..jobspec import JobSpec, ShotPart


@dataclass
class JobRequest:
    """Everything the runner needs to start one generation."""

    tool: str
    built: Built
    kind: str  # "image" | "video": where outputs and records go
    mode: str  # T2I, I2I, EDIT, INPAINT, UPSCALE, T2V, I2V, FLF, R2V, V2V, MULTI
    prompt: str | None
    estimate: Estimate
    targets: list[str] | None = None  # explicit output paths; None: image|video/generated/
    overwrite: bool = False
    fresh: bool = False
    record_type: str = "image"
    plan_type: str | None = None  # row "Type" in plan.md; None: no plan row outside convention folders
    record: dict[str, Any] = field(default_factory=dict)  # more record fields (character_refs, mentions ...)
    shots: list[ShotPart] = field(default_factory=list)  # a multi-shot call's shots
    split: bool = False
    group: bool = False
    budget_usd: float | None = None  # the cap for this project (AIVP_BUDGET_USD, else aivp.toml)

    @property
    def provider(self) -> str:
        return self.built.route.provider

    def idem_key(self) -> str:
        """Same provider, endpoint, input (files by content) and target: the same job."""
        canonical = {
            "provider": self.provider,
            "endpoint": self.built.route.endpoint,
            "input": map_inputs(self.built.payload, lambda r: r.canonical),
            "targets": self.targets,
            "overwrite": self.overwrite,
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()

    def spec(self) -> JobSpec:
        b = self.built
        return JobSpec(
            kind=self.kind, mode=self.mode, shape=b.endpoint.output, model=b.model.id, prompt=self.prompt,
            model_name=b.model.name, targets=tuple(self.targets) if self.targets else None, overwrite=self.overwrite,
            record_type=self.record_type, plan_type=self.plan_type, estimate=self.estimate.as_dict(),
            warnings=tuple(b.warnings), effective=record_payload(b.effective),
            inputs=tuple(r.record() for r in iter_inputs(b.payload)), record=dict(self.record), shots=tuple(self.shots),
            split=self.split, group=self.group,
        )


def record_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload safe for the ledger and records: inputs become their record form (no data: bodies)."""
    out = map_inputs(payload, lambda r: r.record())
    plain: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return plain
