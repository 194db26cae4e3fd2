"""run_storyboard: plan, run and follow the whole storyboard-to-clips pipeline in one tool."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult, TextContent
from pydantic import BaseModel, Field

from ..budget import check_budget
from ..domain.studio import Studio
from ..pipeline import PipelineRun, Planner, estimate, execute, write_plan_rows
from ..pipeline.status import ShotState, default_steps, image_default, load, options_from, shot_states
from .common import boundary, state_of
from .consent import ConfirmSpend, Spend, consent
from .generate import PAID
from .ui import review_line, ui_meta

Stage = Literal["portraits", "locations", "keyframes", "clips"]


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
    @mcp.tool(title="Run storyboard", annotations=PAID, meta=ui_meta("board"))
    @boundary
    async def run_storyboard(
        ctx: Context[Any, Any],
        mode: Annotated[Literal["plan", "run", "status"], Field(description="Start with plan (free).")] = "plan",
        shots: Annotated[list[str] | None, Field(description="Only these shots (3 or 1.2) and what they need.")] = None,
        stages: Annotated[list[Stage] | None, Field()] = None,
        video_model: Annotated[str | None, Field(description="Default seedance-2.0.")] = None,
        image_model: Annotated[str | None, Field(description="Portraits/keyframes (default AIVP_IMAGE_MODEL).")] = None,
        multi_shot: Annotated[bool, Field(description="Dialogue scenes as one Kling O3 multi-shot call each.")] = False,
        hero_shots: Annotated[list[str] | None, Field(description="Shots for hero_model.")] = None,
        hero_model: Annotated[str | None, Field(description="Default kling-v3-pro.")] = None,
        overrides: Annotated[dict[str, dict[str, Any]] | None, Field(description="{shot: {model, image_model, duration, audio}}")] = None,
        redo: Annotated[list[str] | None, Field(description="Shots to make again although done.")] = None,
        audio: Annotated[bool | None, Field(description="Every clip (default per model; on for dialogue).")] = None,
        resolution: Annotated[str | None, Field(description="e.g. 720p")] = None,
        concurrency: Annotated[int, Field(ge=1, le=32, description="Jobs at once.")] = 4,
        retry_unknown: Annotated[bool, Field(description="Resend steps whose submit got no answer.")] = False,
        wait_s: Annotated[float | None, Field(ge=0, le=600, description="run: return after this; the run goes on.")] = None,
        confirm_spend_usd: ConfirmSpend = None,
    ) -> Annotated[CallToolResult, StoryboardResult] | InputRequiredResult:
        """Turn the storyboard (storyboard/storyboard-final/, script/) into portraits, location plates, keyframes
        and clips. plan lists every step, model and cost and spends nothing: call it first. run does only what is
        missing or failed (never pays twice), updates image/plan.md and video/plan.md, and returns after
        wait_s while it goes on. status reports each shot."""
        state = state_of(ctx)
        sb = await anyio.to_thread.run_sync(load, state)
        current: PipelineRun | None = state.runs.get("storyboard")
        if mode == "status":
            return _result(state, sb, current, "status", current.steps.values() if current else default_steps(state, sb),
                           review=review_line(ctx, state.project.root))
        if current is not None and not current.done.is_set():
            if mode == "run":
                await _wait(ctx, current, wait_s)
            return _result(state, sb, current, mode, current.steps.values(), note="A run is already going; this shows it.")
        opts = options_from(sb, shots, stages, video_model, image_model, multi_shot, hero_shots, hero_model, overrides,
                            redo, audio, resolution)
        image_default(state, opts)
        steps = Planner(sb, state.project, opts).build()
        await estimate(state, steps)
        # what a next step repeats so that, followed literally, it does what this call asked (the default left out)
        given = {k: v for k, v in (("shots", shots), ("stages", stages), ("video_model", video_model),
                                   ("image_model", image_model), ("multi_shot", multi_shot or None),
                                   ("hero_shots", hero_shots), ("hero_model", hero_model), ("overrides", overrides),
                                   ("redo", redo), ("audio", audio), ("resolution", resolution),
                                   ("concurrency", None if concurrency == 4 else concurrency),
                                   ("retry_unknown", retry_unknown or None)) if v is not None}
        if mode == "plan":
            return _result(state, sb, None, "plan", steps, given=given)
        todo = [s for s in steps if s.status not in ("exists", "invalid")]
        total = sum(s.estimate_usd for s in todo)
        if any(not s.sandbox for s in todo):  # steps on a sandbox cost nothing and never meet the budget
            check_budget(state.ledger.spend(), sum(s.estimate_usd for s in todo if not s.sandbox), state.budget(),
                         what="run", advice="Run fewer shots (shots=[...]), pick cheaper models, or raise the budget.")
        if (ask := await consent(ctx, state, _spend(steps, total), confirm_spend_usd)) is not None:
            return ask
        write_plan_rows(state, steps)
        run = PipelineRun({s.key: s for s in steps}, concurrency, retry_unknown=retry_unknown, args=given,
                          redo=frozenset(opts.redo))
        state.runs["storyboard"] = run
        state.runner.spawn(execute, state, run)
        await _wait(ctx, run, wait_s)
        return _result(state, sb, run, "run", run.steps.values(), review=review_line(ctx, state.project.root),
                       given=given)


def _spend(steps: list[Any], total: float) -> Spend:
    """What a storyboard run is about to pay for, for the consent question."""
    todo = [s for s in steps if s.status not in ("exists", "invalid")]
    kinds = ", ".join(f"{n} {kind}(s)" for kind, n in sorted(Counter(s.kind for s in todo).items()))
    models = sorted({s.model for s in todo if s.model})
    shown = ", ".join(models[:4]) + (", ..." if len(models) > 4 else "")
    return Spend(total, shown or "the storyboard's models", f"the storyboard run: {kinds or 'nothing'}")


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


def _result(state: Studio, sb: Any, run: PipelineRun | None, mode: str, steps: Any, note: str = "",
            review: str = "", given: dict[str, Any] | None = None) -> CallToolResult:
    steps = list(steps)
    shots = shot_states(state, sb, steps)
    todo = sum(s.estimate_usd for s in steps if s.status in ("pending",))
    status = run.status if run else ("planned" if mode == "plan" else "idle")
    problems = [{"file": p.file, "line": p.line, "message": p.message} for p in sb.problems]
    given = given if given is not None else (run.args if run else {})
    again = {k: v for k, v in given.items() if k != "redo"}  # a new take once made is not paid for again
    if run is not None and (redo := sorted({n for s in steps if s.fresh and s.status not in ("done", "exists")
                                            for n in s.shots} & run.redo)):
        again["redo"] = [str(n) for n in redo]  # the new takes the run did not make
    result = StoryboardResult(run_id=run.id if run else None, mode=mode, status=status, shots=shots,
                              steps=[s.public() for s in steps], estimate_usd=round(todo, 4), problems=problems,
                              next_step=_next(mode, status, todo, problems, given, again, steps))
    text = _text(result, run, note)
    if review and any(s.clip_status == "done" or "done" in s.frames.values() for s in shots):
        text += f"\n{review}"
    return CallToolResult(content=[TextContent(text=text)], structured_content=result.model_dump(mode="json"))


def _next(mode: str, status: str, todo: float, problems: list[Any], given: dict[str, Any], again: dict[str, Any],
          steps: list[Any]) -> str:
    """What to call next, with every argument it needs (`given`: for a plan; `again`: to finish a run)."""
    fix = f" Fix the {len(problems)} storyboard problem(s) listed first if they matter." if problems else ""
    if status == "running":
        return "The run goes on in the server. Call run_storyboard(mode='status') in about 30 s to follow it."
    if mode == "plan":
        if not any(s.status == "pending" for s in steps) and (bad := [s for s in steps if s.status == "invalid"]):
            return (f"Nothing was spent. {len(bad)} step(s) cannot run as asked (see steps[].error); change that, "
                    f"then call {call_text('plan', given)} again.{fix}")
        if not any(s.status == "pending" for s in steps):
            return (f"Nothing was spent, and nothing is left to make. To make shots again: "
                    f"{call_text('plan', {**given, 'redo': ['<shot>']})}.{fix}")
        return f"Nothing was spent. Call {call_text('run', given)} to do it (about ${todo:.2f}).{fix}"
    if status in ("partial", "failed"):
        return (f"Some steps failed (see shots[].error). Fix the cause, then {call_text('run', again)}: only what is "
                "missing is made.")
    if status == "stopped":
        return f"The run stopped with the server. Call {call_text('run', again)} to pick it up: done steps are kept."
    if status == "idle":
        return "No run is going. Call run_storyboard(mode='plan') to see what is left to make."
    return f"Done. Clips are in video/clips/, progress in video/plan.md.{fix}"


def call_text(mode: str, args: dict[str, Any]) -> str:
    """run_storyboard(mode='run', shots=['3'], redo=['3']): a call to copy as written."""
    return "run_storyboard(" + ", ".join(f"{k}={v!r}" for k, v in {"mode": mode, **args}.items()) + ")"


def _text(r: StoryboardResult, run: PipelineRun | None, note: str) -> str:
    counts: dict[str, int] = {}
    for s in r.shots:
        counts[s.status] = counts.get(s.status, 0) + 1
    shots = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    head = {"plan": "Storyboard plan", "run": "Storyboard run", "status": "Storyboard status"}[r.mode]
    steps = f"{len([s for s in r.steps if s['status'] != 'exists'])} step(s) to do" if r.mode == "plan" else (
        run.summary() if run else "")
    where = " on the real models (sandbox: placeholders, nothing is charged)" if r.estimate_usd and any(
        s.get("sandbox") for s in r.steps) else ""
    text = f"{head}: {len(r.shots)} shots ({shots}); {steps}; about ${r.estimate_usd:.2f} still to spend{where}. " \
           f"{r.next_step}"
    return f"{text} {note}".strip()
