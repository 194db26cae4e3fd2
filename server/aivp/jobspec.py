"""What a job is to make, stored with its ledger row: a frozen, versioned `JobSpec`.

The ledger keeps the native request (what was sent) and this spec (what aivp does with the answer:
where the files go, what their records say, how a multi-shot clip is cut). It is written once when
the job is created; the only later change is warnings a provider adds about its result.

Versions:
- 1 (aivp 0.1.0): a plain dict; record fields, the multi-shot plan, `split` and `default_stem`
  under "extra". `from_json` still reads it.
- 2: this dataclass; `v` = 2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

VERSION = 2
# Fields of the record that only describe the call (no behaviour hangs on them).
RECORD_FIELDS = ("input_image", "end_image", "mask", "references", "character_refs", "mentions", "elements")


@dataclass(frozen=True)
class ShotPart:
    """One shot of a multi-shot call: its prompt as written and as sent, its seconds, its own clip."""

    index: int
    prompt: str
    sent_prompt: str
    duration: float
    output: str | None = None  # with split: where this shot's clip goes

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShotPart:
        return cls(int(data["index"]), str(data.get("prompt") or ""), str(data.get("sent_prompt") or data.get("prompt") or ""),
                   float(data.get("duration") or 0.0), data.get("output"))


@dataclass(frozen=True)
class JobSpec:
    """Everything about a job that is not the native request: targets, record fields, post-processing."""

    kind: str  # image | video | auto (adopted requests: the output decides)
    mode: str  # T2I, EDIT, I2V, FLF, R2V, MULTI, EXTERNAL ...
    shape: str  # the endpoint's output shape: images | image | video
    model: str
    prompt: str | None = None
    model_name: str | None = None
    targets: tuple[str, ...] | None = None  # explicit output paths; None: the generated/ folder
    overwrite: bool = False
    record_type: str = "image"  # keyframe, clip, character, candidate, group, external ...
    plan_type: str | None = None  # the plan.md Type cell; None: only convention folders get a row
    estimate: dict[str, Any] | None = None  # Estimate.as_dict() at creation
    warnings: tuple[str, ...] = ()
    effective: dict[str, Any] = field(default_factory=dict)  # the payload plus model defaults: what ran
    inputs: tuple[dict[str, Any], ...] = ()  # InputRef.record() of each input
    record: dict[str, Any] = field(default_factory=dict)  # RECORD_FIELDS, as the record shows them
    shots: tuple[ShotPart, ...] = ()  # a multi-shot call's shots
    split: bool = False  # cut a multi-shot clip into one clip per shot
    group: bool = False  # default name video/clips/group-NN.<ext> instead of the generated/ folder
    v: int = VERSION

    def with_warnings(self, more: list[str]) -> JobSpec:
        return replace(self, warnings=(*self.warnings, *(w for w in more if w not in self.warnings)))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = list(self.targets) if self.targets is not None else None
        data["warnings"] = list(self.warnings)
        data["inputs"] = list(self.inputs)
        data["shots"] = [asdict(s) for s in self.shots]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> JobSpec:
        """Read a stored spec of any version (a missing one reads as an empty image spec)."""
        data = dict(data or {})
        if int(data.get("v") or 1) < 2:
            data = _upgrade_v1(data)
        targets = data.get("targets")
        return cls(
            kind=str(data.get("kind") or "image"), mode=str(data.get("mode") or "-"),
            shape=str(data.get("shape") or "images"), model=str(data.get("model") or ""),
            prompt=data.get("prompt"), model_name=data.get("model_name"),
            targets=tuple(targets) if targets else None, overwrite=bool(data.get("overwrite")),
            record_type=str(data.get("record_type") or data.get("kind") or "image"), plan_type=data.get("plan_type"),
            estimate=data.get("estimate"), warnings=tuple(data.get("warnings") or ()),
            effective=dict(data.get("effective") or {}), inputs=tuple(data.get("inputs") or ()),
            record=dict(data.get("record") or {}), shots=tuple(ShotPart.from_json(s) for s in data.get("shots") or ()),
            split=bool(data.get("split")), group=bool(data.get("group")),
        )


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept record fields and the multi-shot plan in one untyped "extra" dict."""
    extra = dict(data.pop("extra", None) or {})
    return {
        **data,
        "record": {k: extra[k] for k in RECORD_FIELDS if k in extra},
        "shots": extra.get("shots") or [],
        "split": bool(extra.get("split")),
        "group": extra.get("default_stem") == "group",
        "v": VERSION,
    }
