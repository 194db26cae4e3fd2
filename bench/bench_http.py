"""Benchmark 7: aivp over streamable HTTP (`aivp serve --http`) against aivp over stdio (`aivp serve`).

Both servers are real subprocesses started the way clients start them, talked to with the SDK's own
clients (stdio: `Client(StdioServerParameters(...))`; HTTP: `streamable_http_client` with a bearer
token, httpx2), the sandbox in a third process. Three figures:

- 7a spawn -> tools/list: from Popen to the tools/list answer, per protocol era (legacy 2025-11-25 with
  its initialize handshake; modern 2026-07-28). HTTP includes waiting for the port (polling /healthz
  every 5 ms). Median of N after one warm-up.
- 7b per-job overhead: N sequential `generate_image` jobs that finish at once (sandbox queue_s=0,
  image_s=0, flux-schnell 256x256) over one connection; median and p90 per call, and HTTP minus stdio.
- 7c 50 concurrent clients, each its own HTTP connection and MCP session (half modern, half legacy),
  each running one 2 s image job at the same moment: wall time until the last result, beside the ideal
  (one job's 2 s plus its queue time) and beside the same 50 jobs as concurrent calls on one stdio
  connection; when the submits reached the sandbox and when it finished the last job; server and client
  CPU seconds (the 50 clients run in this one process, so they compete with the server for the CPUs).

    python bench/bench_http.py [--quick] [--n 20] [--clients 50]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FAKE_KEY, Row, SandboxProcess, emit_rows, hermetic_environ, new_project, pct  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
ARGS = {"model": "flux-schnell", "size": "256x256"}
ERAS = ("legacy", "auto")  # the SDK client's names: legacy = 2025-11-25, auto = 2026-07-28 (it probes first)


def server_env(sb: SandboxProcess, project: Path) -> dict[str, str]:
    return {**hermetic_environ(project.parent / "home"), **sb.env(), "FAL_KEY": FAKE_KEY,
            "AIVP_PROJECT_DIR": str(project), "AIVP_HTTP_TOKENS": f"bench:{TOKEN}", "AIVP_LOG_LEVEL": "ERROR"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HttpServer:
    """`python -m aivp serve --http` on a free port; ready once /healthz answers."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.port = env, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def __aenter__(self) -> HttpServer:
        import anyio
        import httpx2

        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "aivp", "serve", "--http", "--port", str(self.port)],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        async with httpx2.AsyncClient() as h:
            while True:
                try:
                    if (await h.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return self
                except httpx2.HTTPError:
                    if self.proc.poll() is not None:
                        raise RuntimeError("aivp serve --http exited") from None
                    await anyio.sleep(0.005)

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def http_client(url: str, mode: str) -> Any:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    return http, Client(streamable_http_client(url, http_client=http), mode=mode)  # type: ignore[arg-type]


def stdio_client(env: dict[str, str], mode: str) -> Any:
    from mcp import Client, StdioServerParameters

    return Client(StdioServerParameters(command=sys.executable, args=["-m", "aivp", "serve"], env=env), mode=mode)  # type: ignore[arg-type]


# ------------------------------------------------------------------ 7a spawn -> tools/list

async def spawn_to_list(sb: SandboxProcess, n: int) -> dict[tuple[str, str], list[float]]:
    times: dict[tuple[str, str], list[float]] = {}
    for transport in ("stdio", "http"):
        for mode in ERAS:
            got = []
            for i in range(n + 1):  # the first run warms the .pyc files
                env = server_env(sb, new_project())
                if transport == "stdio":
                    t0 = time.perf_counter()
                    async with stdio_client(env, mode) as c:
                        await c.list_tools()
                        got.append(time.perf_counter() - t0)
                else:
                    async with HttpServer(env) as srv:
                        http, client = http_client(srv.url, mode)
                        async with http, client as c:
                            await c.list_tools()
                            got.append(time.perf_counter() - srv.started)
            times[(transport, mode)] = got[1:]
    return times


# ------------------------------------------------------------------ 7b per-job overhead

async def per_job(sb: SandboxProcess, n: int) -> dict[tuple[str, str], list[float]]:
    async def jobs(c: Any, tag: str) -> list[float]:
        await c.call_tool("generate_image", {"prompt": f"warm-up {tag}", **ARGS})
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            r = await c.call_tool("generate_image", {"prompt": f"per-job {tag} {i}", **ARGS})
            out.append(time.perf_counter() - t0)
            if r.is_error or (r.structured_content or {}).get("status") != "completed":
                raise RuntimeError(f"job failed: {r.content[0].text if r.content else r}")
        return out

    times: dict[tuple[str, str], list[float]] = {}
    for mode in ERAS:
        async with stdio_client(server_env(sb, new_project()), mode) as c:
            times[("stdio", mode)] = await jobs(c, f"stdio {mode}")
        async with HttpServer(server_env(sb, new_project())) as srv:
            http, client = http_client(srv.url, mode)
            async with http, client as c:
                times[("http", mode)] = await jobs(c, f"http {mode}")
    return times


# ------------------------------------------------------------------ 7c concurrent clients

async def concurrent(sb: SandboxProcess, clients: int, run_s: float, queue_s: float, transport: str,
                     downloads: int) -> dict[str, Any]:
    """`clients` image jobs started at one moment: over HTTP each from its own connection and session (half
    modern, half legacy); over stdio as concurrent calls on the one connection stdio has."""
    import anyio

    sb._call("POST", "config", {"queue_s": queue_s, "image_s": run_s})
    tag = f"{transport}-{downloads}"
    env = {**server_env(sb, new_project()), "AIVP_MAX_PARALLEL_DOWNLOADS": str(downloads)}
    connected: list[float] = []
    ends: list[float] = []
    errors: list[str] = []
    request_ids: list[str] = []
    go = anyio.Event()
    t0 = [0.0]
    client_cpu = [0.0]

    async def job(c: Any, i: int) -> None:
        r = await c.call_tool("generate_image", {"prompt": f"client {tag} {i} of {clients}", **ARGS, "wait_s": 600})
        ends.append(time.monotonic() - t0[0])
        if r.is_error or (r.structured_content or {}).get("status") != "completed":
            errors.append(r.content[0].text if r.content else str(r))
        else:
            request_ids.append((r.structured_content or {})["request_id"])

    async def launch(start: Any) -> float:
        c0 = time.perf_counter()
        p0 = [time.process_time()]
        async with anyio.create_task_group() as tg:
            for i in range(clients):
                tg.start_soon(start, i)
            with anyio.fail_after(120):
                while len(connected) + len(errors) < clients:
                    await anyio.sleep(0.01)
            connect_s = time.perf_counter() - c0
            t0[0] = time.monotonic()  # CLOCK_MONOTONIC is system-wide: the sandbox's job times compare with it
            p0[0] = time.process_time()
            go.set()
        client_cpu[0] = time.process_time() - p0[0]
        return connect_s

    if transport == "stdio":
        async with stdio_client(env, "auto") as c:
            await c.call_tool("generate_image", {"prompt": f"warm-up {tag}", **ARGS})
            pid = None

            async def on_stdio(i: int) -> None:
                connected.append(time.perf_counter())
                await go.wait()
                await job(c, i)

            connect_s = await launch(on_stdio)
            cpu = float("nan")
    else:
        async with HttpServer(env) as srv:
            assert srv.proc is not None
            pid = srv.proc.pid
            http, client = http_client(srv.url, "auto")
            async with http, client as c:  # one job first, so the server's first-call costs are not in the figure
                await c.call_tool("generate_image", {"prompt": f"warm-up {tag}", **ARGS})
            cpu0 = cpu_s(pid)

            async def on_http(i: int) -> None:
                http, client = http_client(srv.url, ERAS[i % 2])
                try:
                    async with http, client as c:
                        connected.append(time.perf_counter())
                        await go.wait()
                        await job(c, i)
                except Exception as exc:  # a benchmark reports failures, it does not stop at the first
                    errors.append(repr(exc))

            connect_s = await launch(on_http)
            cpu = cpu_s(pid) - cpu0
    submissions = sum(1 for x in sb.submissions() if str(x["payload"].get("prompt", "")).startswith(f"client {tag} "))
    jobs = [sb.job(rid) for rid in request_ids]
    submitted = [j["submitted"] - t0[0] for j in jobs]  # when each submit reached the sandbox, after the go
    finished = sorted(j["finished"] - t0[0] for j in jobs)
    return {"wall": max(ends) if ends else float("nan"), "ends": ends, "errors": errors, "connect": connect_s,
            "cpu": cpu, "submissions": submissions, "ideal": run_s + queue_s, "submitted": submitted or [float("nan")],
            "sandbox_last": finished[-1] if finished else float("nan"), "client_cpu": client_cpu[0]}


# ------------------------------------------------------------------ report

def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1000:.0f} ms, p90 {pct(xs, 90) * 1000:.0f} ms"


def run(quick: bool, n: int | None, clients: int) -> list[Row]:
    import anyio

    n_spawn = 3 if quick else 5
    n_jobs = n or (10 if quick else 20)
    rows: list[Row] = []
    with SandboxProcess(queue_s=0.0, image_s=0.0, video_s=0.0) as sb:
        print(f"7a. spawn -> tools/list, median of {n_spawn} after a warm-up", flush=True)
        spawn = anyio.run(spawn_to_list, sb, n_spawn)
        for mode in ERAS:
            s, h = statistics.median(spawn[("stdio", mode)]), statistics.median(spawn[("http", mode)])
            print(f"    {mode:<6} stdio {s * 1000:6.0f} ms   http {h * 1000:6.0f} ms   http/stdio {h / s:.2f}")
            rows.append(Row(f"7a. spawn -> tools/list over HTTP ({mode})", f"{h * 1000:.0f} ms",
                            f"stdio {s * 1000:.0f} ms", f"{h / s:.2f}x", None))
        print(f"7b. per-job time, {n_jobs} sequential instant jobs (flux-schnell 256x256) on one connection", flush=True)
        jobs = anyio.run(per_job, sb, n_jobs)
        for mode in ERAS:
            s, h = jobs[("stdio", mode)], jobs[("http", mode)]
            extra = statistics.median(h) - statistics.median(s)
            print(f"    {mode:<6} stdio {fmt(s)}   http {fmt(h)}   http - stdio {extra * 1000:+.1f} ms")
            rows.append(Row(f"7b. per-job time over HTTP ({mode})", f"{statistics.median(h) * 1000:.0f} ms",
                            f"stdio {statistics.median(s) * 1000:.0f} ms", f"{extra * 1000:+.1f} ms/job", None))
        run_s, queue_s = 2.0, 0.05
        print(f"7c. {clients} jobs of {run_s:g} s started at one moment (flux-schnell 256x256)", flush=True)
        variants = [("http", 8, f"{clients} HTTP clients (own session each)"),
                    ("stdio", 8, f"{clients} concurrent calls on one stdio connection")]
        walls = {}
        for transport, downloads, label in variants:
            res = anyio.run(concurrent, sb, clients, run_s, queue_s, transport, downloads)
            walls[(transport, downloads)] = res["wall"]
            sub = res["submitted"]
            cpu = ("" if res["cpu"] != res["cpu"] else f"; server CPU {res['cpu']:.1f} s") + \
                f"; clients' CPU {res['client_cpu']:.1f} s"
            print(f"    {label}: wall from the go to the last result {res['wall']:.2f} s (ideal {res['ideal']:.2f} s); "
                  f"per call {fmt(res['ends'])}; ready in {res['connect']:.2f} s{cpu}; submissions "
                  f"{res['submissions']}; errors {len(res['errors'])}")
            print(f"      submits reached the sandbox {min(sub):.2f} .. {max(sub):.2f} s after the go; the sandbox "
                  f"finished the last job at {res['sandbox_last']:.2f} s")
            for e in res["errors"][:3]:
                print(f"      ! {e[:200]}")
        ideal = run_s + queue_s
        http8, stdio8 = walls[("http", 8)], walls[("stdio", 8)]
        rows.append(Row(f"7c. {clients} concurrent HTTP clients x one {run_s:g} s job", f"{http8:.2f} s",
                        f"ideal {ideal:.2f} s / stdio {stdio8:.2f} s", f"{http8 / ideal:.2f}x ideal, "
                        f"{http8 / stdio8:.2f}x stdio", None))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, help="sequential jobs per transport and era (default 20, quick 10)")
    ap.add_argument("--clients", type=int, default=50)
    args = ap.parse_args()
    rows = run(args.quick, args.n, args.clients)
    emit_rows(rows)


if __name__ == "__main__":
    main()
