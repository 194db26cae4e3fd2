"""Benchmarks 1 and 2: per-job overhead of aivp versus a minimal raw-httpx client, HTTP requests per
job, and how soon a finished job's file is on disk.

Both clients run the same job (the same endpoint and payload aivp builds for `generate_image`,
with a different prompt per job) against one sandbox whose jobs finish instantly (queue_s=0,
image_s=0: a job is COMPLETED as soon as the sandbox has rendered its placeholder PNG). The sandbox
runs in its own process so its rendering does not compete for this process's GIL. Jobs run one
after another, aivp and raw alternating so drift hits both alike.

- aivp: `call_tool("generate_image", ...)` through an in-memory `mcp.Client(build_server(settings))`
  (settings as tests/conftest.make_settings: fake key, 20 ms first poll); the time is the whole call.
- raw:  httpx POST submit -> GET status every 20 ms until COMPLETED -> GET result -> stream the file
  to disk. This is the floor any client pays for the same job on the same sandbox.

"Completion -> on disk" is the file's mtime minus the time the sandbox marked the job done
(`Job.finished`, time.monotonic() in the sandbox process, read through bench/_sandbox_proc.py's
/_bench/jobs/<id>; CLOCK_MONOTONIC is system-wide, converted to wall time once).

    python bench/bench_job.py [--n 30] [--quick] [--profile] [--stub-thumbnail]

--profile prints a pyinstrument tree of the aivp calls. --stub-thumbnail is a what-if: it makes
`aivp.media.thumbnail` fail (the tool then returns no ImageContent) to show the cost of the preview.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FAKE_KEY, Row, SandboxProcess, emit_rows, make_settings, med, ms, new_project, pct  # noqa: E402

OVERHEAD_TARGET = 1.10  # aivp within 10% of raw
NOTICE_TARGET_S = 0.050  # completion noticed (file on disk) within 50 ms
RAW_POLL_S = 0.02  # same as aivp's first poll interval in the bench settings
PROMPT = "bench {who} {i}: a lighthouse on a cliff at dusk, long shot"


def mono_to_wall() -> float:
    """Offset to turn this process's time.monotonic() into time.time()."""
    samples = []
    for _ in range(5):
        a = time.time()
        m = time.monotonic()
        b = time.time()
        samples.append(((a + b) / 2 - m, b - a))
    return min(samples, key=lambda s: s[1])[0]


class RawClient:
    """The minimal client: submit, poll status, fetch the result, download the file."""

    def __init__(self, queue_url: str, endpoint: str, payload: dict[str, Any], out_dir: Path) -> None:
        import httpx

        self.queue_url = queue_url
        self.endpoint = endpoint
        self.payload = payload
        self.out_dir = out_dir
        self.headers = {"Authorization": f"Key {FAKE_KEY}"}
        self.client = httpx.AsyncClient(timeout=30)

    async def run(self, prompt: str) -> tuple[str, Path]:
        c = self.client
        r = await c.post(f"{self.queue_url}/{self.endpoint}", json={**self.payload, "prompt": prompt}, headers=self.headers)
        r.raise_for_status()
        sub = r.json()
        while True:
            s = await c.get(sub["status_url"], headers=self.headers)
            if s.json()["status"] == "COMPLETED":
                break
            await asyncio.sleep(RAW_POLL_S)
        res = (await c.get(sub["response_url"], headers=self.headers)).json()
        files = res.get("images") or [res.get("image")]
        url = files[0]["url"]
        path = self.out_dir / f"{sub['request_id']}.png"
        async with c.stream("GET", url) as d:
            d.raise_for_status()
            with path.open("wb") as f:
                async for chunk in d.aiter_bytes(1 << 20):
                    f.write(chunk)
        return sub["request_id"], path

    async def aclose(self) -> None:
        await self.client.aclose()


async def measure(n: int, profile: bool = False) -> dict[str, Any]:
    from mcp import Client

    from aivp.app import build_server

    project = new_project()
    offset = mono_to_wall()
    out: dict[str, Any] = {"n": n}
    with SandboxProcess(queue_s=0, image_s=0, video_s=0) as sb:
        settings = make_settings(project, sb.env())
        async with Client(build_server(settings)) as mcp:
            async def aivp_job(i: int) -> tuple[str, Path]:
                r = await mcp.call_tool("generate_image", {"prompt": PROMPT.format(who="aivp", i=i)})
                if r.is_error:
                    raise RuntimeError(r.content[0].text)  # type: ignore[union-attr]
                sc = r.structured_content or {}
                return sc["request_id"], project / sc["files"][0]["path"]

            await aivp_job(-1)  # warm-up: imports, catalog, ledger, connection pool
            sub = sb.submissions()[-1]
            payload = {k: v for k, v in sub["payload"].items() if k != "prompt"}
            raw_dir = project.parent / "raw"
            raw_dir.mkdir()
            raw = RawClient(sb.fal_queue_url, sub["endpoint"], payload, raw_dir)
            await raw.run(PROMPT.format(who="raw", i=-1))  # warm-up

            samples: dict[str, list[dict[str, Any]]] = {"aivp": [], "raw": []}
            routes: dict[str, collections.Counter[str]] = {"aivp": collections.Counter(), "raw": collections.Counter()}
            profiler = None
            if profile:
                from pyinstrument import Profiler

                profiler = Profiler(async_mode="enabled", interval=0.0005)
            for i in range(n):
                order = (("aivp", aivp_job), ("raw", raw.run)) if i % 2 == 0 else (("raw", raw.run), ("aivp", aivp_job))
                for who, fn in order:
                    before = collections.Counter(sb.by_route())
                    prompt_arg: Any = i if who == "aivp" else PROMPT.format(who="raw", i=i)
                    if profiler is not None and who == "aivp":
                        profiler.start()
                    c0 = time.process_time()
                    t0 = time.monotonic()
                    request_id, path = await fn(prompt_arg)
                    t1 = time.monotonic()
                    cpu = time.process_time() - c0
                    if profiler is not None and who == "aivp":
                        profiler.stop()
                    job = sb.job(request_id)
                    assert job["finished"] is not None and job["failure"] is None, job
                    mtime = os.stat(path).st_mtime_ns / 1e9
                    samples[who].append({
                        "total": t1 - t0,
                        "cpu": cpu,  # this process, all threads (the sandbox is another process)
                        "submit_to_done": job["finished"] - t0,  # the sandbox's share (render)
                        "done_to_disk": mtime - (job["finished"] + offset),
                        "done_to_return": t1 - job["finished"],
                        "bytes": path.stat().st_size,
                    })
                    routes[who] += collections.Counter(sb.by_route()) - before
            await raw.aclose()
            out["samples"] = samples
            out["routes"] = {k: {r: c / n for r, c in v.items()} for k, v in routes.items()}
            if profiler is not None:
                out["profile"] = profiler.output_text(unicode=True, color=False, show_all=False)
    return out


def medians(res: dict[str, Any]) -> tuple[float, float]:
    """Median per-job time of (aivp, raw)."""
    return tuple(med([x["total"] for x in res["samples"][k]]) for k in ("aivp", "raw"))  # type: ignore[return-value]


def summarize(res: dict[str, Any]) -> tuple[list[str], list[Row]]:
    s = res["samples"]
    lines: list[str] = []
    tot = {k: [x["total"] for x in v] for k, v in s.items()}
    a_med, r_med = med(tot["aivp"]), med(tot["raw"])
    a_p90, r_p90 = pct(tot["aivp"], 90), pct(tot["raw"], 90)
    ratio = a_med / r_med
    lines.append(f"1. per-job time, {res['n']} sequential instantly-finishing generate_image jobs (sandbox queue_s=0, image_s=0)")
    lines.append(f"   {'':24}{'aivp (MCP tool call)':>24}{'raw httpx':>16}{'ratio':>10}")
    lines.append(f"   {'median':24}{ms(a_med):>24}{ms(r_med):>16}{ratio:>9.2f}x")
    lines.append(f"   {'p90':24}{ms(a_p90):>24}{ms(r_p90):>16}{a_p90 / r_p90:>9.2f}x")
    lines.append(f"   {'min':24}{ms(min(tot['aivp'])):>24}{ms(min(tot['raw'])):>16}")
    sd = {k: med([x["submit_to_done"] for x in v]) for k, v in s.items()}
    lines.append(f"   {'start -> sandbox done':24}{ms(sd['aivp']):>24}{ms(sd['raw']):>16}   (submit + render; the same work)")
    cpu = {k: med([x["cpu"] for x in v]) for k, v in s.items()}
    lines.append(f"   {'client CPU per job':24}{ms(cpu['aivp']):>24}{ms(cpu['raw']):>16}   (process_time of this process, "
                 "threads included)")
    over = a_med - r_med
    lines.append(f"   overhead per job: {ms(over)} (median); target <= {OVERHEAD_TARGET:.2f}x raw: "
                 f"{'met' if ratio <= OVERHEAD_TARGET else 'NOT met'}")
    lines.append("")
    lines.append("2. HTTP requests per job, by sandbox route")
    names = sorted(set(res["routes"]["aivp"]) | set(res["routes"]["raw"]))
    lines.append(f"   {'route':24}{'aivp':>10}{'raw':>10}")
    for r in names:
        lines.append(f"   {r:24}{res['routes']['aivp'].get(r, 0):>10.2f}{res['routes']['raw'].get(r, 0):>10.2f}")
    a_req, r_req = sum(res["routes"]["aivp"].values()), sum(res["routes"]["raw"].values())
    lines.append(f"   {'total':24}{a_req:>10.2f}{r_req:>10.2f}")
    d2d = {k: [x["done_to_disk"] for x in v] for k, v in s.items()}
    d2r = {k: [x["done_to_return"] for x in v] for k, v in s.items()}
    lines.append("   sandbox COMPLETED -> file on disk (file mtime)")
    lines.append(f"   {'':24}{'aivp':>10}{'raw':>10}")
    lines.append(f"   {'median':24}{ms(med(d2d['aivp'])):>10}{ms(med(d2d['raw'])):>10}")
    lines.append(f"   {'p90':24}{ms(pct(d2d['aivp'], 90)):>10}{ms(pct(d2d['raw'], 90)):>10}")
    lines.append(f"   {'max':24}{ms(max(d2d['aivp'])):>10}{ms(max(d2d['raw'])):>10}")
    lines.append("   sandbox COMPLETED -> call returned")
    lines.append(f"   {'median':24}{ms(med(d2r['aivp'])):>10}{ms(med(d2r['raw'])):>10}")
    notice = pct(d2d["aivp"], 90)
    lines.append(f"   target: completion noticed (file on disk) within {ms(NOTICE_TARGET_S)} "
                 f"-> p90 {ms(notice)}: {'met' if notice <= NOTICE_TARGET_S else 'NOT met'}")
    rows = [
        Row("1. per-job time, median", ms(a_med), ms(r_med), f"{ratio:.2f}x / <= {OVERHEAD_TARGET:.2f}x",
            ratio <= OVERHEAD_TARGET),
        Row("1. per-job time, p90", ms(a_p90), ms(r_p90), f"{a_p90 / r_p90:.2f}x / <= {OVERHEAD_TARGET:.2f}x",
            a_p90 / r_p90 <= OVERHEAD_TARGET),
        Row("1. client CPU per job, median", ms(cpu["aivp"]), ms(cpu["raw"]), f"{cpu['aivp'] / cpu['raw']:.2f}x / -",
            None),
        Row("2. HTTP requests per job", f"{a_req:.1f}", f"{r_req:.1f}", f"{a_req / r_req:.2f}x / -", None),
        Row("2. COMPLETED -> on disk, p90", ms(notice), ms(pct(d2d["raw"], 90)), f"- / <= {ms(NOTICE_TARGET_S)}",
            notice <= NOTICE_TARGET_S),
        Row("2. COMPLETED -> call returned, median", ms(med(d2r["aivp"])), ms(med(d2r["raw"])),
            f"{med(d2r['aivp']) / med(d2r['raw']):.2f}x / -", None),
    ]
    return lines, rows


def stub_thumbnail() -> None:
    import aivp.media

    def no_thumbnail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("thumbnail stubbed out by bench_job.py --stub-thumbnail")

    aivp.media.thumbnail = no_thumbnail  # type: ignore[assignment]


def run(quick: bool = False, n: int | None = None, profile: bool = False, what_if: bool = False) -> list[Row]:
    """Print the figures; with `what_if`, also a second run with the thumbnail stubbed out."""
    n = n or (10 if quick else 30)
    res = asyncio.run(measure(n, profile))
    lines, rows = summarize(res)
    if what_if:
        import aivp.media

        real = aivp.media.thumbnail
        stub_thumbnail()
        try:
            alt = asyncio.run(measure(n))
        finally:
            aivp.media.thumbnail = real  # type: ignore[assignment]
        a, r = medians(alt)
        a0, r0 = medians(res)
        lines.append(f"   what-if (diagnostic, not the target figure): the same run with media.thumbnail stubbed out:")
        lines.append(f"   aivp {ms(a)}, raw {ms(r)}, {a / r:.2f}x; overhead {ms(a - r)} vs {ms(a0 - r0)} with the "
                     f"thumbnail, so the preview costs ~{ms((a0 - r0) - (a - r))} per job")
        rows.insert(3, Row("1. (what-if: no thumbnail) median", ms(a), ms(r), f"{a / r:.2f}x / <= {OVERHEAD_TARGET:.2f}x",
                        None))
    print("\n".join(lines))
    if "profile" in res:
        print("\npyinstrument, aivp calls only:\n" + res["profile"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, help="jobs per client (default 30, --quick 10)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--profile", action="store_true", help="pyinstrument the aivp calls and print the tree")
    ap.add_argument("--stub-thumbnail", action="store_true",
                    help="what-if: run only with aivp.media.thumbnail stubbed out (no preview image)")
    ap.add_argument("--what-if", action="store_true", help="after the real run, a second run with the thumbnail stubbed")
    args = ap.parse_args()
    if args.stub_thumbnail:
        stub_thumbnail()
    emit_rows(run(args.quick, args.n, args.profile, args.what_if))


if __name__ == "__main__":
    main()
