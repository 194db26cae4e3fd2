"""Benchmark 5: cold start, spawn -> handshake -> tools/list over stdio.

`python -m aivp serve` against the baseline `bench/bare_server.py` (a bare mcp 2.3.0 MCPServer
with one trivial tool), both started with the same interpreter. A raw JSON-RPC client (as in the
SDK reference script coldstart_bench_stdio.py) times from Popen to the tools/list answer, in both
protocol eras:
- legacy: initialize / notifications/initialized / tools/list (what today's hosts send)
- modern: server/discover / tools/list (2026-07-28)
One warm-up run (warm .pyc) and then the median of N runs each. Target: aivp under 1.5x the bare
server. When aivp misses it (or with --importtime) the top importers of `aivp serve` are printed
from `python -X importtime`.

    python bench/bench_coldstart.py [--n 10] [--quick] [--importtime]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, Row, emit_rows, hermetic_environ, temp_dir  # noqa: E402

TARGET = 1.5
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}}


def _send(p: subprocess.Popen[str], obj: dict[str, object]) -> None:
    assert p.stdin is not None
    p.stdin.write(json.dumps(obj) + "\n")
    p.stdin.flush()


def _read_id(p: subprocess.Popen[str], i: int) -> dict[str, object]:
    assert p.stdout is not None
    while True:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("server exited before answering")
        m = json.loads(line)
        if m.get("id") == i:
            return m


def once(cmd: list[str], era: str, env: dict[str, str], cwd: str) -> tuple[float, float, int]:
    """(spawn -> init answered, spawn -> tools/list answered, number of tools), seconds."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=env, cwd=cwd)
    try:
        if era == "legacy":
            _send(p, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}})
            _read_id(p, 1)
            t_init = time.perf_counter() - t0
            _send(p, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            _send(p, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        else:
            _send(p, {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": META}})
            _read_id(p, 1)
            t_init = time.perf_counter() - t0
            _send(p, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META}})
        answer = _read_id(p, 2)
        t_list = time.perf_counter() - t0
        tools = answer["result"]["tools"]  # type: ignore[index]
    finally:
        assert p.stdin is not None
        p.stdin.close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return t_init, t_list, len(tools)


def series(cmd: list[str], era: str, n: int, env: dict[str, str], cwd: str) -> dict[str, float]:
    once(cmd, era, env, cwd)  # warm-up: .pyc caches, page cache
    runs = [once(cmd, era, env, cwd) for _ in range(n)]
    init = [r[0] for r in runs]
    full = [r[1] for r in runs]
    return {"init": statistics.median(init), "list": statistics.median(full), "min": min(full), "max": max(full),
            "tools": runs[0][2]}


def importtime(cmd: list[str], env: dict[str, str], cwd: str) -> list[tuple[int, int, str]]:
    """(self us, cumulative us, module with indentation) from -X importtime of a server that exits at EOF."""
    importtime_warm = subprocess.run(cmd, input="", capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
    del importtime_warm  # the .pyc cache is warm now
    p = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], input="", capture_output=True, text=True, env=env,
                       cwd=cwd, timeout=60)
    rows = []
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (.*)$", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return rows


def summarize_importtime(rows: list[tuple[int, int, str]], top: int = 12) -> list[str]:
    """Top-level packages by cumulative time, and the slowest single modules by self time."""
    by_root: dict[str, int] = defaultdict(int)
    total = 0
    for self_us, cum_us, name in rows:
        if name.startswith(" "):
            continue  # nested: already counted in its top-level importer
        total += cum_us
        by_root[name.strip().split(".")[0]] += cum_us
    out = [f"   total {total / 1e6:.2f} s in {len(rows)} modules; top-level importers by cumulative time:"]
    for root, us in sorted(by_root.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"     {root:32} {us / 1e6:6.3f} s")
    out.append("   slowest modules by self time:")
    for self_us, _, name in sorted(rows, reverse=True)[:top]:
        out.append(f"     {name.strip():48} {self_us / 1e6:6.3f} s")
    return out


def extra_modules(rows: list[tuple[int, int, str]], base: list[tuple[int, int, str]], top: int = 12) -> list[str]:
    """What aivp serve imports that the bare server does not, by root package (self time summed)."""
    seen = {name.strip() for _, _, name in base}
    by_root: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for self_us, _, name in rows:
        if name.strip() not in seen:
            by_root[name.strip().split(".")[0]][0] += self_us
            by_root[name.strip().split(".")[0]][1] += 1
    total = sum(v[0] for v in by_root.values())
    out = [f"   imported by aivp serve but not by the bare server: {sum(v[1] for v in by_root.values())} modules, "
           f"{total / 1e6:.3f} s self time; by package:"]
    for root, (us, count) in sorted(by_root.items(), key=lambda kv: -kv[1][0])[:top]:
        out.append(f"     {root:32} {us / 1e6:6.3f} s  ({count} modules)")
    return out


BREAKDOWN = """
import time, asyncio
t = [time.perf_counter()]
import mcp.server.mcpserver; t.append(time.perf_counter())
from aivp.app import build_server; from aivp.settings import Settings; t.append(time.perf_counter())
server = build_server(Settings.from_env()); t.append(time.perf_counter())
import httpx; httpx.AsyncClient(); t.append(time.perf_counter())
from aivp.ledger import Ledger; from aivp.jobs import JobRunner; from aivp.providers.fal import FalProvider
t.append(time.perf_counter())
asyncio.run(server.list_tools()); t.append(time.perf_counter())
names = ["import mcp.server.mcpserver (shared with the bare server)", "import aivp.app + settings",
         "build_server() (7 tools, resources)", "httpx.AsyncClient() in the lifespan (TLS context)",
         "import ledger, jobs, fal (lifespan)", "first tools/list"]
for n, a, b in zip(names, t, t[1:]): print(f"     {n:56} {(b - a) * 1000:6.0f} ms")
"""


def breakdown(env: dict[str, str], cwd: str) -> list[str]:
    """Where aivp's start-up time goes, phase by phase, in a fresh interpreter."""
    p = subprocess.run([sys.executable, "-c", BREAKDOWN], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
    return ["   aivp start-up phases (in-process, fresh interpreter):", *p.stdout.rstrip().splitlines()]


def run(quick: bool = False, n: int | None = None, show_importtime: bool = False, as_is: bool = False) -> list[Row]:
    n = n or (5 if quick else 10)
    tmp = temp_dir("aivp-bench-cold-")
    (tmp / "project").mkdir()
    env = hermetic_environ(tmp / "home")
    if not as_is:
        # warm .pyc for everything, as an installed package has: this environment may set
        # PYTHONDONTWRITEBYTECODE, and aivp is installed editable (its source has no __pycache__), so
        # aivp would be recompiled on every start while mcp's wheels come precompiled. The prefix keeps
        # the cache out of the repository; the warm-up run fills it for both servers.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    cwd = str(tmp / "project")
    py = sys.executable
    servers = {
        "aivp": [py, "-m", "aivp", "serve", "--project", cwd],
        "bare": [py, str(BENCH_DIR / "bare_server.py")],
    }
    res = {(name, era): series(cmd, era, n, env, cwd) for era in ("legacy", "modern") for name, cmd in servers.items()}
    cache = "inherited environment" if as_is else f"warm .pyc under PYTHONPYCACHEPREFIX (filled by the warm-up)"
    print(f"5. cold start over stdio: spawn -> handshake -> tools/list, median of {n} runs after 1 warm-up; {cache}")
    print(f"   {'':30}{'init':>10}{'+tools/list':>13}{'min':>9}{'max':>9}{'tools':>7}")
    rows: list[Row] = []
    missed = False
    for era in ("legacy", "modern"):
        for name, label in (("aivp", "python -m aivp serve"), ("bare", "bare MCPServer, 1 tool")):
            r = res[(name, era)]
            print(f"   {era + ' ' + label:30}{r['init'] * 1000:8.0f}ms{r['list'] * 1000:11.0f}ms"
                  f"{r['min'] * 1000:7.0f}ms{r['max'] * 1000:7.0f}ms{r['tools']:>7}")
        ratio = res[("aivp", era)]["list"] / res[("bare", era)]["list"]
        met = ratio < TARGET
        missed = missed or not met
        print(f"   {era}: aivp / bare = {ratio:.2f}x (target < {TARGET}x: {'met' if met else 'NOT met'})")
        rows.append(Row(f"5. cold start -> tools/list ({era})", f"{res[('aivp', era)]['list'] * 1000:.0f} ms",
                        f"{res[('bare', era)]['list'] * 1000:.0f} ms", f"{ratio:.2f}x / < {TARGET}x", met))
    if missed or show_importtime:
        print("   -X importtime, python -m aivp serve (stdin at EOF, so it imports everything and exits):")
        a_rows = importtime(servers["aivp"], env, cwd)
        b_rows = importtime(servers["bare"], env, cwd)
        print("\n".join(summarize_importtime(a_rows)))
        print("   -X importtime, bare server:")
        print("\n".join(summarize_importtime(b_rows, top=5)))
        print("\n".join(extra_modules(a_rows, b_rows)))
        print("\n".join(breakdown(env, cwd)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, help="runs per server and era (default 10, --quick 5)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--importtime", action="store_true", help="always print the -X importtime summary")
    ap.add_argument("--as-is", action="store_true",
                    help="keep the inherited bytecode settings (PYTHONDONTWRITEBYTECODE) instead of a warm .pyc cache")
    args = ap.parse_args()
    emit_rows(run(args.quick, args.n, args.importtime, args.as_is))


if __name__ == "__main__":
    main()
