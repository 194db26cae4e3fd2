"""Benchmark 6: a 30-shot storyboard through `run_storyboard(mode="run", concurrency=8)`.

The script writes a synthetic storyboard into a temporary project (`_storyboard_gen.py`: 2 characters,
3 scenes taking turns, 30 shots, 9 with last frames, a frame plan whose parents and same-camera
references give the keyframes real dependencies) and drives the MCP tool through an in-memory
`mcp.Client(build_server(settings))` (with a progress callback, as a client that shows progress)
against a sandbox in its own process where every job, image or video, is IN_PROGRESS for 5 s after
0.05 s in the queue. It prints:

- planning: `run_storyboard(mode="plan")` for the whole storyboard, first call and warm median, and
  `load_storyboard` alone;
- wall time of the run call (wait_s=600: it returns when the run is done) beside schedules of the same
  step DAG (every step's `waits_for`, 8 slots): list scheduling highest level first with nominal job
  times (the best a perfect scheduler could do with those dependencies), the same in the plan-order
  FIFO that aivp's semaphore gives, the critical path alone, jobs x job time / 8, and both again with
  each step's measured times;
- where the time went: from the call to the first step, each step's phases (slot taken -> submitted
  -> finished at the sandbox -> file written -> slot given back), slots free while a step was ready,
  slots given out of chain order, and the chain of steps that set the run's length;
- HTTP requests per job by sandbox route, submissions == steps (and no payload sent twice);
- progress notifications the client received, event-loop stalls with the stack the loop was stuck
  in, time in plan.md rewrites, ledger updates, records, output inspection and events (wrapped to
  count and time them only), client and sandbox CPU, and peak RSS of this process during the run (a
  thread samples /proc/self/status VmRSS every 20 ms).

    python bench/bench_storyboard.py [--shots 30] [--job-s 5] [--concurrency 8] [--no-frame-plan]
                                     [--no-progress] [--real-render] [--quick]

--quick: 12 shots of 2 s jobs. --real-render: the sandbox encodes every
placeholder clip (by default it encodes one per kind of clip and reuses it; see _sandbox_proc.py).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Row, SandboxProcess, emit_rows, make_settings, med, new_project, pct  # noqa: E402
from _probes import StallWatch, Tally, wrap  # noqa: E402
from _schedule import actual_chain, dag_of, inversions, levels, simulate  # noqa: E402
from _storyboard_gen import write_storyboard  # noqa: E402
from bench_memory import RssSampler  # noqa: E402

QUEUE_S = 0.05


# ------------------------------------------------------------------ measuring hooks


HOOKS: dict[str, Any] = {}  # installed once per process: name -> Tally, plus "slots"


def install_hooks() -> tuple[dict[str, Tally], dict[str, tuple[float, float]]]:
    """Wrap a few aivp functions to count and time them (nothing else changes), and `_run_step` to see
    when each step holds one of the run's slots (execute() takes the slot just around that call)."""
    if HOOKS:
        return HOOKS["tallies"], HOOKS["slots"]
    from aivp.jobs import outputs
    from aivp.ledger import Ledger
    from aivp.pipeline import run as pipeline_run
    from aivp.project import Project

    hooks = {
        "Project.update_plan (plan.md row, on the loop)": (Project, "update_plan"),
        "Ledger.update (on the loop)": (Ledger, "update"),
        "Project.write_json (output record, on the loop)": (Project, "write_json"),
        "outputs._inspect (probe/verify/poster, thread)": (outputs, "_inspect"),
        "outputs._conform_image (thread)": (outputs, "_conform_image"),
        "PipelineRun.emit (progress to listeners)": (pipeline_run.PipelineRun, "emit"),
    }
    tallies = {name: Tally() for name in hooks}
    for name, (owner, attr) in hooks.items():
        wrap(owner, attr, tallies[name])
    slots: dict[str, tuple[float, float]] = {}  # step key -> (slot taken, slot given back)
    run_step = pipeline_run._run_step

    async def timed_step(state: Any, run: Any, step: Any) -> None:
        t = time.monotonic()
        try:
            await run_step(state, run, step)
        finally:
            slots[step.key] = (t, time.monotonic())

    pipeline_run._run_step = timed_step  # execute() looks it up in the module at call time
    HOOKS.update(tallies=tallies, slots=slots)
    return tallies, slots


# ------------------------------------------------------------------ one run


async def bench(sb: SandboxProcess, shots: int, job_s: float, concurrency: int, frame_plan: bool,
                progress: bool) -> dict[str, Any]:
    from mcp import Client

    from aivp.app import build_server
    from aivp.pipeline import run as pipeline_run
    from aivp.storyboard import load_storyboard
    from aivp.tools import storyboard as tool

    project = new_project("aivp-bench-storyboard-")
    layout = write_storyboard(project, shots, frame_plan)
    t = time.perf_counter()
    sbd = load_storyboard(project)
    load_s = time.perf_counter() - t
    out: dict[str, Any] = {"project": project, "layout": layout, "load_s": load_s,
                           "problems": [f"{p.file}:{p.line} {p.message}" for p in sbd.problems]}
    tallies, slots = install_hooks()
    slots.clear()
    tool.execute = pipeline_run.execute  # run_storyboard spawns tool.execute

    settings = make_settings(project, sb.env())
    async with Client(build_server(settings)) as c:
        plan_times = []
        for _ in range(4):
            t = time.perf_counter()
            r = await c.call_tool("run_storyboard", {"mode": "plan"})
            plan_times.append(time.perf_counter() - t)
            if r.is_error:
                raise RuntimeError(r.content[0].text)  # type: ignore[union-attr]
        plan = r.structured_content or {}
        out["plan_s"] = plan_times
        out["steps_plan"] = plan["steps"]
        out["plan_requests"] = sb.stats()["requests"]

        before = sb.stats()
        for tally in tallies.values():
            tally.reset()
        notes: list[tuple[float, str]] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            notes.append((time.monotonic(), message or ""))

        watch = StallWatch()
        stop = asyncio.Event()
        lag_task = asyncio.create_task(watch.beat_loop(stop))
        cpu0 = time.process_time()
        sb_cpu0 = sb.cpu_s()
        with RssSampler() as rss:
            rss_before = rss.peak
            t0 = time.monotonic()
            r = await c.call_tool("run_storyboard", {"mode": "run", "concurrency": concurrency, "wait_s": 600},
                                  progress_callback=on_progress if progress else None)
            wall = time.monotonic() - t0
        stop.set()
        await lag_task
        out.update(wall=wall, t0=t0, cpu=time.process_time() - cpu0, sandbox_cpu=sb.cpu_s() - sb_cpu0,
                   rss_before=rss_before, rss_peak=rss.peak, rss_samples=rss.samples, notes=notes, watch=watch, slots=dict(slots),
                   tallies={k: copy.copy(v) for k, v in tallies.items()})
        if r.is_error:
            raise RuntimeError(r.content[0].text)  # type: ignore[union-attr]
        result = r.structured_content or {}
        out["result"] = result
    after = sb.stats()
    out["routes"] = collections.Counter(after["by_route"]) - collections.Counter(before["by_route"])
    subs = sb.submissions()[before["submissions"]:]
    out["submissions"] = subs
    out["jobs"] = {s["request_id"]: sb.job(s["request_id"]) for s in subs}
    return out


# ------------------------------------------------------------------ analysis


def step_times(res: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per step, on time.monotonic(): slot taken (`_run_step` entered), sandbox submitted / finished,
    file on disk (its mtime), slot given back."""
    project: Path = res["project"]
    offset = time.time() - time.monotonic()
    rid_of: dict[str, str] = {}
    for log in (*project.glob("image/log/*.json"), *project.glob("video/log/*.json")):
        rec = json.loads(log.read_text(encoding="utf-8"))
        if rec.get("file") and rec.get("request_id"):
            rid_of[rec["file"]] = rec["request_id"]
    times = {}
    for s in res["result"]["steps"]:
        files = [res["project"] / f for f in s["files"]]
        job = res["jobs"].get(rid_of.get(s["files"][0], ""))
        if s["status"] != "done" or job is None or s["key"] not in res["slots"] or not all(f.is_file() for f in files):
            continue
        slot_in, slot_out = res["slots"][s["key"]]
        times[s["key"]] = {"in": slot_in, "sub": job["submitted"], "fin": job["finished"],
                           "file": max(f.stat().st_mtime for f in files) - offset, "out": slot_out}
    return times


def timeline(res: dict[str, Any], times: dict[str, dict[str, float]], slots: int) -> dict[str, Any]:
    deps = {s["key"]: s["waits_for"] for s in res["result"]["steps"]}
    if not times:
        return {}
    start = min(t["in"] for t in times.values())
    end = max(t["out"] for t in times.values())
    ready = {k: max((times[d]["out"] for d in deps[k] if d in times), default=start) for k in times}
    grid = 0.005
    busy = idle_ready = 0.0
    max_inflight = 0
    for i in range(int((end - start) / grid) + 1):
        t = start + i * grid
        inflight = sum(1 for v in times.values() if v["in"] <= t < v["out"])
        waiting = sum(1 for k, v in times.items() if ready[k] <= t < v["in"])
        max_inflight = max(max_inflight, inflight)
        busy += inflight * grid
        idle_ready += max(0, min(slots - inflight, waiting)) * grid
    phases = {
        "slot taken -> submitted (prepare, upload inputs, submit)": [v["sub"] - v["in"] for v in times.values()],
        "submitted -> finished at the sandbox": [v["fin"] - v["sub"] for v in times.values()],
        "finished -> file written (notice, result, download)": [v["file"] - v["fin"] for v in times.values()],
        "file written -> slot back (inspect, record, rows, events)": [v["out"] - v["file"] for v in times.values()],
    }
    return {"start": start, "end": end, "span": end - start, "avg_inflight": busy / max(end - start, 1e-9),
            "max_inflight": max_inflight, "idle_ready_s": idle_ready, "phases": phases,
            "wait_for_slot": [times[k]["in"] - ready[k] for k in times],
            "dispatch_free": [times[k]["in"] - ready[k] for k in times if deps[k]], "ready": ready}


def duplicates(subs: list[dict[str, Any]]) -> int:
    seen: collections.Counter[str] = collections.Counter()
    for s in subs:
        p = s["payload"]
        seen[repr((s["endpoint"], sorted((k, str(v)) for k, v in p.items() if k in ("prompt", "image_url", "image_urls"))))] += 1
    return sum(n - 1 for n in seen.values() if n > 1)


def plan_md_scaling(rows: tuple[int, ...] = (50, 200, 1000)) -> list[tuple[int, float]]:
    """The cost of one Project.update_plan (read, set one row, write, rename) on a plan.md of N rows."""
    from aivp.project import Project

    out = []
    for n in rows:
        project = Project(new_project("aivp-bench-planmd-"))
        for i in range(n):
            project.update_plan("image", f"image/frames/f-{i:04d}.png", type_=f"f-{i:04d}", model="m", mode="I2I",
                                status="pending")
        t = time.perf_counter()
        for i in range(0, n, max(1, n // 20)):
            project.update_plan("image", f"image/frames/f-{i:04d}.png", type_=f"f-{i:04d}", model="m", mode="I2I",
                                status="done")
        out.append((n, (time.perf_counter() - t) / len(range(0, n, max(1, n // 20)))))
    return out


def _gist(message: str) -> str:
    """A progress message without its shot, step and file names: what kind of news it is."""
    text = message.split(": ", 1)[1] if message.startswith("shot ") else message
    text = text.split(": ", 1)[1] if ": " in text and text.split(" ", 1)[0] in ("portrait", "location", "keyframe", "clip", "group") else text
    return " ".join(w for w in text.split()[:3] if "/" not in w and not w[:1].isdigit()) or message[:20]


def report(res: dict[str, Any], shots: int, job_s: float, concurrency: int) -> list[Row]:
    unit = job_s + QUEUE_S
    order, deps = dag_of(res["steps_plan"])
    jobs = len(order)
    lv = levels(order, deps)
    crit = int(max(lv.values())) if lv else 0
    nominal = {k: unit for k in order}
    hlf = simulate(order, deps, concurrency, nominal, "level")
    fifo = simulate(order, deps, concurrency, nominal, "fifo")
    width = jobs * unit / concurrency
    waves = math.ceil(jobs / concurrency) * unit
    kinds = collections.Counter(s["kind"] for s in res["steps_plan"] if s["key"] in deps)
    wall = res["wall"]
    result = res["result"]
    times = step_times(res)
    tl = timeline(res, times, concurrency)
    subs = res["submissions"]
    dup = duplicates(subs)
    n_sub = len(subs)
    routes = res["routes"]
    req = sum(routes.values())
    notes = res["notes"]
    watch: StallWatch = res["watch"]
    lags = watch.lags

    print(f"6. storyboard of {shots} shots -> run_storyboard(mode='run', concurrency={concurrency}); every sandbox job "
          f"{job_s:g} s IN_PROGRESS + {QUEUE_S:g} s queued; {jobs} steps ("
          + ", ".join(f"{n} {k}" for k, n in kinds.items()) + f"); frame plan: {'yes' if res['has_fp'] else 'no'}")
    if res["problems"]:
        print(f"   storyboard problems: {res['problems'][:3]}")
    p = res["plan_s"]
    print(f"   planning: load_storyboard alone {res['load_s'] * 1000:.0f} ms; run_storyboard(mode='plan') first call "
          f"{p[0] * 1000:.0f} ms, then median {med(p[1:]) * 1000:.0f} ms ({len(p) - 1} calls); "
          f"sandbox requests during plan: {res['plan_requests']}")
    print(f"   {'':60}{'seconds':>9} {'wall/x':>7}")
    lines = [("aivp: the run call, until it returned", wall),
             (f"ideal: list schedule, highest level first, {concurrency} slots", hlf),
             (f"ideal: list schedule, plan-order FIFO, {concurrency} slots", fifo),
             (f"bound: critical path ({crit} jobs x {unit:g} s)", crit * unit),
             (f"bound: jobs x job time / {concurrency} ({jobs} x {unit:g} / {concurrency})", width),
             (f"bound: ceil(jobs / {concurrency}) waves", waves)]
    measured: dict[str, float] = {}
    if len(times) == jobs:  # the same DAG with each job's measured times
        for what, dur in (("sandbox", {k: v["fin"] - v["sub"] for k, v in times.items()}),
                          ("slot", {k: v["out"] - v["in"] for k, v in times.items()})):
            measured[what] = simulate(order, deps, concurrency, dur, "level")
            measured[what + "_fifo"] = simulate(order, deps, concurrency, dur, "fifo")
        lines += [("ideal with each job's measured sandbox time (HLF)", measured["sandbox"]),
                  ("ideal with each step's measured slot time (HLF)", measured["slot"]),
                  ("ideal with each step's measured slot time (FIFO)", measured["slot_fifo"])]
    for name, v in lines:
        print(f"   {name:60}{v:9.2f} {wall / v:7.2f}")
    print(f"   run status {result['status']}; shots " + ", ".join(
        f"{n} {k}" for k, n in collections.Counter(s['status'] for s in result['shots']).items()))
    if tl:
        print(f"   where the time went: {tl['start'] - res['t0']:.2f} s from the call to the first step taking a slot "
              f"(load, plan, estimate, plan.md rows); first slot taken -> last given back {tl['span']:.2f} s; "
              f"{wall - (tl['end'] - res['t0']):.2f} s from then to the call returning")
        print(f"   slots: average {tl['avg_inflight']:.2f} of {concurrency} held, max {tl['max_inflight']}; "
              f"slot-seconds free while a step was ready: {tl['idle_ready_s']:.2f}; dependency's slot given back -> "
              f"dependent takes a slot (free slot or not): median {med(tl['dispatch_free']) * 1000:.1f} ms, "
              f"p90 {pct(tl['dispatch_free'], 90) * 1000:.0f} ms")
        print(f"   per step {'':52}{'median':>8}{'p90':>8}{'max':>8}")
        for name, v in tl["phases"].items():
            print(f"     {name:58}{med(v):8.3f}{pct(v, 90):8.3f}{max(v):8.3f}")
        chain = actual_chain(times, {st["key"]: st["waits_for"] for st in result["steps"]})
        at_sandbox = sum(times[k]["fin"] - times[k]["sub"] for k, _, _ in chain)
        before = sum(times[k]["sub"] - times[k]["in"] for k, _, _ in chain)
        after = sum(times[k]["out"] - times[k]["fin"] for k, _, _ in chain)
        gaps = sum(g for _, _, g in chain)
        print(f"   the chain that set the length ({len(chain)} steps, {tl['span']:.2f} s): {at_sandbox:.2f} s at the sandbox, "
              f"{before:.2f} s slot -> submit, {after:.2f} s finished -> slot given back, {gaps:.2f} s between steps")
        print("     " + " > ".join(f"{k}" + (" [slot]" if why.startswith("a slot") else "") for k, why, _ in chain))
        inv = inversions(times, tl["ready"], lv)
        kinds_of = {st["key"]: st["kind"] for st in result["steps"]}
        pairs = collections.Counter(f"{kinds_of[a]} before {kinds_of[b]}" for a, b in inv)
        print(f"   slot order: {len(inv)} of {len(times)} slots went to a step while a ready step with a longer chain "
              f"behind it waited (" + ", ".join(f"{n}x {w}" for w, n in pairs.most_common(3))
              + (f"; e.g. {inv[0][0]} over {inv[0][1]} (chains of {lv[inv[0][0]]:.0f} and {lv[inv[0][1]]:.0f} jobs)"
                 if inv else "") + ")")
        by_kind: dict[str, list[float]] = collections.defaultdict(list)
        for st in result["steps"]:
            if st["key"] in times:
                by_kind[st["kind"]].append(times[st["key"]]["fin"] - times[st["key"]]["sub"])
        print("   sandbox job time by kind (median / max s): " + ", ".join(
            f"{k} {med(v):.2f} / {max(v):.2f}" for k, v in by_kind.items()))
    print(f"   submissions {n_sub} vs steps {jobs}: {'equal' if n_sub == jobs else 'DIFFERENT'}; "
          f"payloads sent more than once: {dup}")
    print(f"   HTTP requests {req} = {req / max(n_sub, 1):.2f} per job, by route: " + ", ".join(
        f"{r} {c} ({c / max(n_sub, 1):.2f})" for r, c in sorted(routes.items(), key=lambda x: -x[1])))
    if notes:
        per_s = collections.Counter(int(t - res["t0"]) for t, _ in notes)
        what = collections.Counter(_gist(m) for _, m in notes)
        print(f"   progress notifications: {len(notes)} ({len(notes) / max(n_sub, 1):.1f} per job), "
              f"busiest second {max(per_s.values())}, {sum(len(m) for _, m in notes) / 1024:.0f} KiB of messages; "
              "most common: " + ", ".join(f"{w!r} {n}" for w, n in what.most_common(5)))
    big = [x for x in lags if x > watch.threshold]
    print(f"   event loop: 10 ms sleep overshoot median {med(lags) * 1000:.1f} ms, p99 {pct(lags, 99) * 1000:.1f} ms, "
          f"max {max(lags, default=0) * 1000:.0f} ms; {len(big)} stalls > {watch.threshold * 1000:.0f} ms, "
          f"{sum(big):.2f} s in all")
    if watch.samples:
        total = sum(watch.samples.values())
        print(f"   where the loop was stuck ({total} stack samples, 5 ms apart, during stalls):")
        by_inner: collections.Counter[str] = collections.Counter()
        for stack, n in watch.samples.items():
            by_inner[" <- ".join(stack[:3])] += n
        for stack, n in by_inner.most_common(6):
            print(f"     {n:4d} {stack}")
    print(f"   time in (wall clock, summed over calls) {'':26}{'calls':>7}{'/job':>6}{'total s':>9}{'max ms':>8}")
    for name, t in res["tallies"].items():
        print(f"     {name:58}{t.calls:7d}{t.calls / max(n_sub, 1):6.1f}{t.seconds:9.2f}{t.max_s * 1000:8.1f}")
    print("   one plan.md rewrite alone, by table size: " + ", ".join(
        f"{n} rows {t * 1000:.2f} ms" for n, t in plan_md_scaling()))
    print(f"   CPU s: this process {res['cpu']:.1f}, sandbox {res['sandbox_cpu']:.1f}; RSS of this process: "
          f"{res['rss_before'] / 2**20:.0f} MiB before the run, peak {res['rss_peak'] / 2**20:.0f} MiB "
          f"(+{(res['rss_peak'] - res['rss_before']) / 2**20:.0f} MiB; {res['rss_samples']} samples)")
    name = f"6. storyboard {shots} shots, {job_s:g} s jobs, concurrency {concurrency}"
    rows = [Row(name, f"{wall:.1f} s", f"ideal {hlf:.1f} s (crit. path {crit * unit:.1f} s, jobs/{concurrency} {width:.1f} s)",
                f"{wall / hlf:.2f}x ideal / -", None)]
    if measured:
        rows.append(Row("6. storyboard: vs ideal with measured job times", f"{wall:.1f} s",
                        f"{measured['sandbox']:.1f} s (sandbox times), {measured['slot']:.1f} s (slot times)",
                        f"{wall / measured['sandbox']:.2f}x, {wall / measured['slot']:.2f}x / -", None))
    rows += [
        Row("6. storyboard: submissions == steps, requests/job", f"{n_sub} subs, {req / max(n_sub, 1):.1f} req/job",
            f"{jobs} steps", f"{'equal' if n_sub == jobs and not dup else 'NOT equal'} / submissions == steps",
            n_sub == jobs and not dup),
        Row("6. storyboard: plan mode, peak RSS", f"plan {p[0] * 1000:.0f} ms (warm {med(p[1:]) * 1000:.0f} ms)",
            f"RSS {res['rss_before'] / 2**20:.0f} -> {res['rss_peak'] / 2**20:.0f} MiB", "- / -", None),
    ]
    return rows


def run(quick: bool = False, shots: int | None = None, job_s: float | None = None, concurrency: int = 8,
        frame_plan: bool = True, progress: bool = True, real_render: bool = False) -> list[Row]:
    shots = shots or (12 if quick else 30)
    job_s = job_s if job_s is not None else (2.0 if quick else 5.0)
    with SandboxProcess(queue_s=QUEUE_S, image_s=job_s, video_s=job_s, memo_clips=not real_render) as sb:
        res = asyncio.run(bench(sb, shots, job_s, concurrency, frame_plan, progress))
    res["has_fp"] = frame_plan
    return report(res, shots, job_s, concurrency)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shots", type=int, help="shots in the storyboard (default 30, --quick 12)")
    ap.add_argument("--job-s", type=float, help="seconds every sandbox job runs (default 5, --quick 2)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--no-frame-plan", action="store_true", help="no frame-plan.md: keyframes in shot order")
    ap.add_argument("--no-progress", action="store_true", help="call without a progress callback")
    ap.add_argument("--real-render", action="store_true",
                    help="let the sandbox encode every placeholder clip (by default it encodes each kind once)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    emit_rows(run(args.quick, args.shots, args.job_s, args.concurrency, not args.no_frame_plan, not args.no_progress,
                  args.real_render))


if __name__ == "__main__":
    main()
