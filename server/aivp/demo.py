"""`aivp demo`: the main job end to end on the embedded sandbox, with no key and no network.

It copies the sample storyboard shipped with aivp (a storm at a lighthouse: six shots, two characters,
two scenes, one dialogue scene, two shots with a last frame) into a new project folder, starts the
sandbox in this process, and drives a fresh aivp server through a real MCP client the way an agent
would: plan the storyboard (nothing spent), run it (portraits, location plates, keyframes, clips, the
dialogue scene as one Kling multi-shot call split into shot clips), follow it with status calls, then
run it again to show that nothing is paid twice. Everything the sandbox makes is a labelled placeholder;
the summary shows what the same run would cost on the real models.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

SAMPLE = Path(__file__).parent / "samples" / "lighthouse"


def run_demo(project: Path | None = None) -> int:
    root = (project or Path.cwd() / f"aivp-demo-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    if root.exists() and any(root.iterdir()):
        print(f"{root} already exists and is not empty; pass --project with a new folder.")
        return 2
    shutil.copytree(SAMPLE, root, dirs_exist_ok=True)
    from .sandbox import Sandbox

    with Sandbox(port=0, queue_s=0.3, image_s=0.6, video_s=1.5) as sb:
        env = {**sb.env(), "FAL_KEY": "sandbox-demo-key", "AIVP_HOME": str(root / ".aivp" / "home")}
        return anyio.run(_demo, root, env, sb)


def say(text: str = "") -> None:
    print(text, flush=True)


class Ticker:
    """The run's progress: one bar redrawn in place on a terminal; elsewhere (a log, a pipe) one line per
    finished or failed step, not every queue position."""

    def __init__(self, total: int, tty: bool) -> None:
        self.total, self.tty = total, tty
        self.finished: set[str] = set()
        self.last = ""

    def event(self, text: str) -> None:
        failed = "failed:" in text or "blocked:" in text
        if not (failed or " done: " in text) or text in self.finished:
            if self.tty and text:
                self.draw(text)
            return
        self.finished.add(text)
        if self.tty and not failed:
            self.draw(text)
        else:
            self.clear()
            say(f"     {'x' if failed else '+'} {text}")

    def draw(self, text: str) -> None:
        done = min(len(self.finished), self.total)
        filled = round(20 * done / max(self.total, 1))
        line = f"   [{'#' * filled}{'.' * (20 - filled)}] {done}/{self.total} steps  {text}"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = line[:width].ljust(len(self.last))
        self.last = line.rstrip()
        sys.stdout.write("\r" + line)
        sys.stdout.flush()

    def clear(self) -> None:
        if self.tty and self.last:
            sys.stdout.write("\r" + " " * len(self.last) + "\r")
            self.last = ""

    def close(self, done: int) -> None:
        """`done`: the run's own count (an event sent between two calls reaches no one)."""
        if self.tty and self.last:
            self.finished |= {f"step {i}" for i in range(done - len(self.finished))}
            self.draw(f"{done} steps done")
            sys.stdout.write("\n")
            self.last = ""


async def _demo(root: Path, env: dict[str, str], sb: Any) -> int:
    from mcp import Client
    from mcp.types import ElicitResult

    from .app import build_server, text_of
    from .settings import Settings

    settings = Settings.from_env(env, project_dir=root)
    t0 = time.monotonic()
    say(f"aivp demo: project {root}")
    say(f"sandbox: {sb.url} (a local stand-in for fal.ai; every image and clip is a PLACEHOLDER)\n")

    async def consent(context: Any, params: Any) -> ElicitResult:  # the user's side of spend consent: the demo says yes
        say(f"   aivp asks before spending: {params.message}\n   (the demo answers yes)")
        return ElicitResult(action="accept", content={"approve": True})

    async with Client(build_server(settings), elicitation_callback=consent) as client:

        async def call(tool: str, args: dict[str, Any], progress: Any = None) -> dict[str, Any]:
            r = await client.call_tool(tool, args, progress_callback=progress)
            if r.is_error:
                raise SystemExit(f"demo step failed: {text_of(r)}")
            return dict(r.structured_content or {})

        plan = await call("run_storyboard", {"mode": "plan", "multi_shot": True})
        say("1. The sample storyboard (storyboard/storyboard-final/), planned with run_storyboard(mode='plan'):")
        for s in plan["shots"]:
            frames = " + ".join(k for k in ("first", "last") if s["frames"].get(k))
            say(f"     shot {s['number']:02d} ({s['id']}) {s['scene']:<22} {', '.join(s['characters']):<12} keyframes: {frames}")
        say("   steps, models and costs (nothing is spent by a plan):")
        width = max(len(f) for st in plan["steps"] for f in st["files"])
        for st in plan["steps"]:
            first, *more = st["files"]  # a group's shot clips: one per line, never cut mid-path
            say(f"     {st['kind']:<9} {first:<{width}}  {st['model']:<17} {st['mode']:<6} ${st['estimate_usd']:.3f}")
            for f in more:
                say(f"     {'':<9} {f}")
        cost = plan["estimate_usd"]
        say(f"   total on the real models: about ${cost:.2f} (the dialogue scene 2.1-2.3 as one Kling O3 multi-shot call)")

        say("\n2. run_storyboard(mode='run'): returns after wait_s while the run goes on in the server")
        ticker = Ticker(len(plan["steps"]), sys.stdout.isatty())

        async def progress(p: float, total: float | None, message: str | None) -> None:
            ticker.event(message or "")

        run = await call("run_storyboard", {"mode": "run", "multi_shot": True, "wait_s": 2}, progress)
        ticker.clear()
        say(f"   status: {run['status']}; following it with run_storyboard(mode='run', wait_s=30), which joins the run …")
        while run["status"] == "running":
            run = await call("run_storyboard", {"mode": "run", "multi_shot": True, "wait_s": 30}, progress)
        ticker.close(sum(1 for st in run["steps"] if st.get("status") == "done"))
        say(f"   run {run['status']}:")
        for s in run["shots"]:
            say(f"     shot {s['number']:02d}: {s['status']:<7} {s['clip']}")
        if run["status"] != "done":
            raise SystemExit("demo run did not finish cleanly; see the errors above")

        before = sb.submission_count()
        again = await call("run_storyboard", {"mode": "run", "multi_shot": True, "wait_s": 30})
        say(f"\n3. The same run again: {again['status']}, {sb.submission_count() - before} new submission(s) "
            "(done shots are never paid twice)")
        spend = await client.call_tool("queue_status", {"limit": 3})
        say("\n4. queue_status(): sandbox jobs are kept apart from real spend; the newest jobs, one a line:")
        for line in text_of(spend).splitlines():
            say(f"     {line}")
        spent = dict(spend.structured_content or {})

    say(f"\nDone in {time.monotonic() - t0:.1f} s. What is where:")
    made: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".aivp" not in p.parts
                       and not p.is_relative_to(root / "script") and not p.is_relative_to(root / "storyboard")):
        made.setdefault(path.parent.relative_to(root).as_posix() + "/", []).append(path.name)
    for folder, names in made.items():
        say(textwrap.fill(", ".join(names), 110, initial_indent=f"   {folder:<18} ", subsequent_indent=" " * 22,
                          break_on_hyphens=False))
    record = json.loads((root / "video/log/group-01.json").read_text(encoding="utf-8"))
    say("\nThe dialogue scene's record (video/log/group-01.json) lists its shots: "
        + ", ".join(f"{s['file']} ({s['duration']:g} s)" for s in record["shots"]))
    checks = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((root / "video/log").glob("shot-*.json"))]
    say("Clip checks (each clip decoded through, its length compared with what was asked):")
    for c in checks:
        say(f"   {c['output'].get('check', {}).get('message', c['file'] + ': not checked')}")
    say(f"Progress tables: {root / 'image/plan.md'} and {root / 'video/plan.md'}")
    say(f"Ledger of every job: {root / '.aivp' / 'ledger.sqlite3'} (try: aivp jobs --project {root})")
    say(f"On the real models this run would have cost about ${cost:.2f}; here real spend is "
        f"${spent['spent_usd']:.2f}: every job went to the sandbox.")
    say(f"Submissions the sandbox received: {sb.submission_count()}")
    return 0
