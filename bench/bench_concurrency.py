"""Benchmark 3: 200 concurrent jobs that each take 2 s, launched at once through the MCP server.

The sandbox runs in its own process with queue_s=0 and image_s=2 (every job is IN_PROGRESS for
2 s). All jobs are started together as concurrent `call_tool("generate_image", ..., wait_s=600)`
calls on one in-memory `mcp.Client(build_server(settings))`; the figure is the wall time from the
launch until the last call has returned with its file on disk. It is printed for the default
AIVP_MAX_CONCURRENT_JOBS (16) and for 200, beside:

- the ideal: one job's run time (2 s) plus queue time (0 s);
- the limit's own floor: ceil(jobs / limit) waves x 2 s;
- a raw-httpx baseline: the same 200 jobs submitted at once by a minimal client (submit, poll
  status every 100 ms, GET result, download), which shows what the sandbox itself can do.

The jobs use flux-schnell at 256x256 so the sandbox's placeholder rendering (it draws and encodes a
real PNG per job) stays small beside the 2 s; with the default 1024x1024 model the sandbox process
needs ~7 s of CPU for 200 renders and would become the bottleneck instead of aivp.

    python bench/bench_concurrency.py [--jobs 200] [--run-s 2] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FAKE_KEY, Row, SandboxProcess, emit_rows, make_settings, med, new_project, pct  # noqa: E402

ARGS = {"model": "flux-schnell", "size": "256x256"}
RAW_POLL_S = 0.1


async def run_aivp(sb: SandboxProcess, jobs: int, limit: int) -> dict[str, Any]:
    import anyio
    from mcp import Client

    from aivp.app import build_server

    project = new_project()
    settings = make_settings(project, sb.env(), max_parallel_downloads=limit)
    ends: list[float] = []
    errors: list[str] = []
    async with Client(build_server(settings)) as c:
        warm = await c.call_tool("generate_image", {"prompt": "warm-up [sandbox:slow=0]", **ARGS})
        if warm.is_error:
            raise RuntimeError(warm.content[0].text)  # type: ignore[union-attr]
        t0 = time.monotonic()

        async def one(i: int) -> None:
            r = await c.call_tool("generate_image", {"prompt": f"concurrency job {i} of {jobs}", **ARGS, "wait_s": 600})
            ends.append(time.monotonic() - t0)
            sc = r.structured_content or {}
            if r.is_error or sc.get("status") != "completed":
                errors.append(r.content[0].text if r.content else str(sc))  # type: ignore[union-attr]

        async with anyio.create_task_group() as tg:
            for i in range(jobs):
                tg.start_soon(one, i)
        wall = time.monotonic() - t0
    files = list((project / "image" / "generated").glob("concurrency-job-*"))
    return {"wall": wall, "ends": ends, "errors": errors, "files": len(files)}


async def run_raw(sb: SandboxProcess, jobs: int) -> dict[str, Any]:
    import httpx

    submissions = sb.submissions()
    endpoint = next(s for s in reversed(submissions) if s["endpoint"] == "fal-ai/flux/schnell")
    payload = {k: v for k, v in endpoint["payload"].items() if k != "prompt"}
    out_dir = new_project().parent / "raw"
    out_dir.mkdir()
    headers = {"Authorization": f"Key {FAKE_KEY}"}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)  # as aivp's client
    ends: list[float] = []
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        t0 = time.monotonic()

        async def one(i: int) -> None:
            r = await c.post(f"{sb.fal_queue_url}/fal-ai/flux/schnell", json={**payload, "prompt": f"raw job {i}"},
                             headers=headers)
            r.raise_for_status()
            sub = r.json()
            while (await c.get(sub["status_url"], headers=headers)).json()["status"] != "COMPLETED":
                await asyncio.sleep(RAW_POLL_S)
            res = (await c.get(sub["response_url"], headers=headers)).json()
            url = (res.get("images") or [res.get("image")])[0]["url"]
            async with c.stream("GET", url) as d:
                with (out_dir / f"{i}.jpg").open("wb") as f:
                    async for chunk in d.aiter_bytes(1 << 20):
                        f.write(chunk)
            ends.append(time.monotonic() - t0)

        await asyncio.gather(*(one(i) for i in range(jobs)))
        wall = time.monotonic() - t0
    return {"wall": wall, "ends": ends, "errors": [], "files": len(list(out_dir.iterdir()))}


def describe(name: str, r: dict[str, Any], ideal: float) -> str:
    e = r["ends"]
    return (f"   {name:40}{r['wall']:8.2f} s {r['wall'] / ideal:7.1f}x   first {min(e):5.2f} s, median {med(e):5.2f} s, "
            f"p90 {pct(e, 90):5.2f} s; files {r['files']}, errors {len(r['errors'])}; CPU s: this process "
            f"{r['client_cpu']:.1f}, sandbox {r['sandbox_cpu']:.1f}")


def run(quick: bool = False, jobs: int | None = None, run_s: float = 2.0) -> list[Row]:
    jobs = jobs or (100 if quick else 200)
    ideal = run_s + 0.0
    results: dict[str, dict[str, Any]] = {}
    with SandboxProcess(queue_s=0, image_s=run_s, video_s=run_s) as sb:
        for key, fn in (("aivp_wide", lambda: run_aivp(sb, jobs, jobs)), ("aivp_default", lambda: run_aivp(sb, jobs, 8)),
                        ("raw", lambda: run_raw(sb, jobs))):
            sb_cpu, my_cpu = sb.cpu_s(), time.process_time()
            results[key] = asyncio.run(fn())
            results[key]["sandbox_cpu"] = sb.cpu_s() - sb_cpu
            results[key]["client_cpu"] = time.process_time() - my_cpu
    print(f"3. {jobs} concurrent generate_image jobs of {run_s:g} s each (sandbox queue_s=0, image_s={run_s:g}; "
          f"{ARGS['model']} {ARGS['size']}), wall time until every call returned")
    print(f"   {'':44}{'wall':>10} {'/ideal':>7}")
    print(f"   {'ideal (one job: run + queue)':44}{ideal:8.2f} s {1.0:7.1f}x")
    print(describe("raw httpx, all at once", results["raw"], ideal))
    print(describe(f"aivp, max_parallel_downloads={jobs}", results["aivp_wide"], ideal))
    print(describe("aivp, max_parallel_downloads=8 (default)", results["aivp_default"], ideal))
    for k, r in results.items():
        for err in r["errors"][:3]:
            print(f"   {k} error: {err[:200]}")
    wide, default, raw = results["aivp_wide"]["wall"], results["aivp_default"]["wall"], results["raw"]["wall"]
    return [
        Row(f"3. {jobs} x {run_s:g} s jobs, downloads {jobs}", f"{wide:.2f} s", f"ideal {ideal:.2f} s / raw {raw:.2f} s",
            f"{wide / ideal:.2f}x ideal, {wide / raw:.2f}x raw / -", None),
        Row(f"3. {jobs} x {run_s:g} s jobs, downloads 8 (default)", f"{default:.2f} s", f"raw {raw:.2f} s",
            f"{default / ideal:.2f}x ideal, {default / raw:.2f}x raw / -", None),
    ]

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, help="concurrent jobs (default 200, --quick 100)")
    ap.add_argument("--run-s", type=float, default=2.0, help="seconds each job runs at the sandbox (default 2)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    emit_rows(run(args.quick, args.jobs, args.run_s))


if __name__ == "__main__":
    main()
