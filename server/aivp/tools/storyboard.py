"""run_storyboard: plan, run and follow the whole storyboard-to-clips pipeline in one tool."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from ..errors import BudgetExceeded, InputError
from ..pipeline import Options, PipelineRun, Planner, Step, estimate, execute, write_plan_rows
from ..pipeline.plan import clip_path, frame_path
from .common import AppState, boundary, budget_of, state_of
from .generate import PAID

Stage = Literal["portraits", "locations", "keyframes", "clips"]


class ShotState(BaseModel):
    number: int
    id: str
    scene: str
    characters: list[str]
    first_frame: str | None = Field(description="Its keyframe path, with the step status in `frames`")
    last_frame: str | None
    clip: str
    frames: dict[str, str] = Field(description="first/last -> status")
    clip_status: str
    status: str = Field(description="done, running, queued, pending, failed, blocked")
    error: str | None = None


class StoryboardResult(BaseModel):
    run_id: str | None
    mode: str
    status: str = Field(description="planned, running, done, partial, failed, stopped")
    shots: list[ShotState]
    steps: list[dict[str, Any]] = Field(description="Every step in order: kind, files, model, mode, status, cost, job id, why")
    estimate_usd: float = Field(description="Estimated cost of the steps still to do")
    problems: list[dict[str, Any]] = Field(description="Storyboard files aivp could not fully read (file, line, message)")
    next_step: str


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Run storyboard", annotations=PAID)
    @boundary
    async def run_storyboard(
        ctx: Context[Any, Any],
        mode: Annotated[Literal["plan", "run", "status"], Field(description="plan: show every step, model and cost, spend nothing; run: do what is missing; status: how each shot is doing.")] = "plan",
        shots: Annotated[list[str] | None, Field(description="Only these shots (numbers like 3 or ids like 1.2) and what they need.")] = None,
        stages: Annotated[list[Stage] | None, Field(description="Only these stages (default all: portraits, locations, keyframes, clips).")] = None,
        video_model: Annotated[str | None, Field(description="Clip model (default seedance-1.5-pro, the cheap default).")] = None,
        image_model: Annotated[str | None, Field(description="Portrait/keyframe model (default: the project's image default, see AIVP_IMAGE_MODEL).")] = None,
        multi_shot: Annotated[bool, Field(description="Render dialogue scenes with recurring characters as one Kling O3 multi-shot call each, split into shot clips.")] = False,
        hero_shots: Annotated[list[str] | None, Field(description="Shots to render with the hero model.")] = None,
        hero_model: Annotated[str | None, Field(description="Model for hero shots (default kling-v3-pro; veo-3.1 also fits).")] = None,
        overrides: Annotated[dict[str, dict[str, Any]] | None, Field(description="Per shot (key: number or id): model, image_model, duration, audio.")] = None,
        redo: Annotated[list[str] | None, Field(description="Shots to make again even though their files exist (a new take replaces them).")] = None,
        audio: Annotated[bool | None, Field(description="Native audio on or off for every clip (default: each model's default).")] = None,
        resolution: Annotated[str | None, Field(description="Clip resolution where the model offers a choice, e.g. 720p.")] = None,
        concurrency: Annotated[int, Field(ge=1, le=32, description="Jobs at once.")] = 4,
        retry_unknown: Annotated[bool, Field(description="Send again the steps whose earlier submit got no answer (check the provider's dashboard first).")] = False,
        wait_s: Annotated[float | None, Field(ge=0, le=600, description="run: seconds to wait before returning (the run goes on in the server).")] = None,
    ) -> Annotated[CallToolResult, StoryboardResult]:
        """Turn the project's storyboard into character portraits, location plates, keyframes and clips.

        Reads storyboard/storyboard-final/ and script/. Order: portraits (front, then side/back from it),
        keyframes in frame-plan order with their references, clips in shot order (image-to-video from the
        keyframe, first+last frame where needed, else text-to-video). `plan` lists every step, model and
        cost and spends nothing: call it first. `run` does only what is missing or failed (never pays
        twice), keeps image/plan.md and video/plan.md current and returns after wait_s while the run goes
        on; `status` reports each shot."""
        state = state_of(ctx)
        sb = await anyio.to_thread.run_sync(_load, state)
        current: PipelineRun | None = state.runs.get("storyboard")
        if mode == "status":
            return _result(state, sb, current, "status", current.steps.values() if current else _fresh_steps(state, sb))
        if current is not None and not current.done.is_set():
            if mode == "run":
                await _wait(ctx, current, wait_s)
            return _result(state, sb, current, mode, current.steps.values(), note="A run is already going; this shows it.")
        opts = _options(sb, shots, stages, video_model, image_model or _image_default(state), multi_shot, hero_shots,
                        hero_model, overrides, redo, audio, resolution)
        steps = Planner(sb, state.project, opts).build()
        await estimate(state, steps)
        if mode == "plan":
            return _result(state, sb, None, "plan", steps)
        total = sum(s.estimate_usd for s in steps if s.status not in ("exists", "invalid"))
        _check_budget(state, total)
        write_plan_rows(state, steps)
        run = PipelineRun({s.key: s for s in steps}, concurrency, retry_unknown=retry_unknown)
        state.runs["storyboard"] = run
        state.runner.spawn(execute, state, run)
        await _wait(ctx, run, wait_s)
        return _result(state, sb, run, "run", run.steps.values())


def _load(state: AppState) -> Any:
    from ..storyboard import load_storyboard

    sb = load_storyboard(state.project.root)
    if not sb.shots:
        where = "; ".join(f"{p.file}:{p.line or '-'} {p.message}" for p in sb.problems[:5])
        raise InputError(f"No shots could be read from storyboard/storyboard-final/shots/ ({where or 'no files'}). "
                         "Write the storyboard first (shot-01.md ...), then call again.")
    return sb


def _shot_numbers(sb: Any, names: list[str] | None) -> set[int] | None:
    if names is None:
        return None
    found = set()
    for n in names:
        text = str(n).strip().removeprefix("shot-").removeprefix("Shot ").strip()
        shot = sb.shot(int(text)) if re.fullmatch(r"\d+", text) else sb.shot(text)
        if shot is None:
            known = ", ".join(f"{s.number} ({s.id})" for s in sb.shots)
            raise InputError(f"There is no shot {n!r} in the storyboard; shots are {known}.")
        found.add(shot.number)
    return found


def _options(sb: Any, shots: list[str] | None, stages: list[str] | None, video_model: str | None,
             image_model: str | None, multi_shot: bool, hero_shots: list[str] | None, hero_model: str | None,
             overrides: dict[str, dict[str, Any]] | None, redo: list[str] | None, audio: bool | None,
             resolution: str | None) -> Options:
    opts = Options(shots=_shot_numbers(sb, shots), multi_shot=multi_shot, audio=audio, resolution=resolution,
                   hero=_shot_numbers(sb, hero_shots) or set(), redo=_shot_numbers(sb, redo) or set())
    if stages:
        opts.stages = tuple(stages)
    if video_model:
        opts.video_model = video_model
    if image_model:
        opts.image_model = image_model
    if hero_model:
        opts.hero_model = hero_model
    for key, value in (overrides or {}).items():
        (number,) = _shot_numbers(sb, [key]) or {0}
        unknown = set(value) - {"model", "image_model", "duration", "audio"}
        if unknown:
            raise InputError(f"Shot override {key!r} has {sorted(unknown)}; use model, image_model, duration, audio.")
        opts.overrides[number] = value
    from ..catalog import resolve

    for name in (opts.video_model, opts.image_model, opts.hero_model, *(v.get("model") for v in opts.overrides.values())):
        if name:
            resolve(name)  # an unknown model is refused now, naming the catalog, not halfway through a run
    return opts


def _image_default(state: AppState) -> str | None:
    """The project's image default, or Seedream on BytePlus when its key is set (the router's rule)."""
    if state.settings.image_model:
        return state.settings.image_model
    if state.settings.key_for("byteplus") is not None and "byteplus" in state.runner.providers:
        return "seedream"
    return None


def _check_budget(state: AppState, total: float) -> None:
    budget = budget_of(state)
    if budget is None:
        return
    spend = state.ledger.spend()
    if spend["spent_usd"] + spend["committed_usd"] + total > budget + 1e-9:
        raise BudgetExceeded(
            f"This run would cost about ${total:.2f}; with ${spend['spent_usd']:.2f} spent and "
            f"${spend['committed_usd']:.2f} running it would pass the ${budget:.2f} budget. Nothing was sent. "
            "Run fewer shots (shots=[...]), pick cheaper models, or raise the budget (AIVP_BUDGET_USD or aivp.toml).")


async def _wait(ctx: Context[Any, Any], run: PipelineRun, wait_s: float | None) -> None:
    state = state_of(ctx)
    count = [0]

    async def relay(event: Any) -> None:
        count[0] += 1
        shots = ", ".join(f"{n:02d}" for n in event.shots)
        await ctx.report_progress(count[0], None, f"{'shot ' + shots + ': ' if shots else ''}{event.message}")

    run.listeners.add(relay)
    try:
        with anyio.move_on_after(state.settings.wait_s if wait_s is None else wait_s):
            await run.done.wait()
    finally:
        run.listeners.discard(relay)


def _fresh_steps(state: AppState, sb: Any) -> list[Step]:
    return Planner(sb, state.project, Options()).build()


def _result(state: AppState, sb: Any, run: PipelineRun | None, mode: str, steps: Any, note: str = "") -> CallToolResult:
    steps = list(steps)
    by_target = {t: s for s in steps for t in s.targets}
    in_flight = {t for row in state.ledger.unfinished() for t in (row.spec.get("targets") or [])}
    shots = []
    for shot in sb.shots:
        frames = {k: _status(by_target, state, frame_path(shot.number, k), in_flight) for k in shot.frames}
        clip = _status(by_target, state, clip_path(shot.number), in_flight)
        involved = [s for s in steps if shot.number in s.shots]
        errors = [s.error for s in involved if s.error]
        statuses = {clip, *frames.values()}
        overall = ("failed" if statuses & {"failed", "blocked", "invalid"} else "done" if clip in ("done", "exists")
                   else "running" if statuses & {"running", "queued"} else "pending")
        shots.append(ShotState(
            number=shot.number, id=shot.id, scene=shot.scene, characters=list(shot.character_names),
            first_frame=frame_path(shot.number, "first") if "first" in shot.frames else None,
            last_frame=frame_path(shot.number, "last") if "last" in shot.frames else None, clip=clip_path(shot.number),
            frames=frames, clip_status=clip, status=overall, error=errors[0] if errors else None))
    todo = sum(s.estimate_usd for s in steps if s.status in ("pending",))
    status = run.status if run else ("planned" if mode == "plan" else "idle")
    problems = [{"file": p.file, "line": p.line, "message": p.message} for p in sb.problems]
    result = StoryboardResult(run_id=run.id if run else None, mode=mode, status=status, shots=shots,
                              steps=[s.public() for s in steps], estimate_usd=round(todo, 4), problems=problems,
                              next_step=_next(mode, status, todo, problems))
    text = _text(result, run, note)
    return CallToolResult(content=[TextContent(text=text)], structured_content=result.model_dump(mode="json"))


def _status(by_target: dict[str, Step], state: AppState, rel: str, in_flight: set[str]) -> str:
    step = by_target.get(rel)
    if (state.project.root / rel).is_file() and (step is None or step.status in ("exists", "pending")):
        return "done"
    if rel in in_flight and (step is None or step.status == "pending"):
        return "running"  # a job from an earlier run, still going (or resumed after a restart)
    if step is not None:
        return "done" if step.status == "exists" else step.status
    return "missing"


def _next(mode: str, status: str, todo: float, problems: list[Any]) -> str:
    fix = f" Fix the {len(problems)} storyboard problem(s) listed first if they matter." if problems else ""
    if mode == "plan":
        return f"Nothing was spent. Call run_storyboard(mode='run') to do it (about ${todo:.2f}).{fix}"
    if status == "running":
        return "The run goes on in the server. Call run_storyboard(mode='status') in about 30 s to follow it."
    if status in ("partial", "failed"):
        return "Some steps failed (see shots[].error). Fix the cause, then run again: only what is missing is redone."
    if status == "stopped":
        return "The run stopped with the server. Call run_storyboard(mode='run') to pick it up: done steps are kept."
    if status == "idle":
        return "No run is going. Call run_storyboard(mode='plan') to see what is left to make."
    return f"Done. Clips are in video/clips/, progress in video/plan.md.{fix}"


def _text(r: StoryboardResult, run: PipelineRun | None, note: str) -> str:
    counts: dict[str, int] = {}
    for s in r.shots:
        counts[s.status] = counts.get(s.status, 0) + 1
    shots = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    head = {"plan": "Storyboard plan", "run": "Storyboard run", "status": "Storyboard status"}[r.mode]
    steps = f"{len([s for s in r.steps if s['status'] != 'exists'])} step(s) to do" if r.mode == "plan" else (
        run.summary() if run else "")
    text = f"{head}: {len(r.shots)} shots ({shots}); {steps}; about ${r.estimate_usd:.2f} still to spend. {r.next_step}"
    return f"{text} {note}".strip()
