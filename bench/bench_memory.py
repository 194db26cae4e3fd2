"""Benchmark 4: peak memory while aivp downloads a huge output (64 MiB, 256 MiB, 1 GiB).

The sandbox runs in its own process and serves a filler "video" of N bytes (`[sandbox:bytes=N]` on
a video endpoint; the bytes are made up chunk by chunk, never held). Every measurement runs in a
fresh child process (this script with --child) so one measurement's heap cannot hide the next
one's; in the child a thread samples VmRSS from /proc/self/status every 20 ms, and VmHWM (the
kernel's peak, reset through /proc/self/clear_refs just before the measured part) double-checks
the peak. Written file data sits in the page cache, which is not RSS.

Three lines per size:
- download: `aivp.download.download()` on the output URL (the clean figure: the streaming loop
  plus its sha256 pass);
- job:      the full `generate_video` tool call through `mcp.Client(build_server(...))`: submit,
  follow, result, download, then `verify_video` on the file. The filler is not a real MP4, so
  the check fails; that is expected here and its message is printed;
- raw:      a minimal httpx `client.stream()` loop writing 1 MiB chunks (the baseline).

    python bench/bench_memory.py [--quick] [--sizes 64,256,1024]   (sizes in MiB)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FAKE_KEY, Row, SandboxProcess, emit_rows, make_settings, mib, new_project  # noqa: E402

VIDEO_ENDPOINT = "fal-ai/bytedance/seedance/v1.5/pro/text-to-video"
FLAT_SLACK = 16 << 20  # "flat": RSS growth at the biggest size is within 16 MiB of the growth at the smallest


# ------------------------------------------------------------------ the child: one measurement


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples VmRSS every `interval` s in a thread; `peak` is the highest seen (bytes)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kib("VmRSS") * 1024)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = _status_kib("VmRSS") * 1024
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kib("VmRSS") * 1024)


def reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


async def child_download(url: str, dest: Path) -> dict[str, Any]:
    import httpx

    from aivp.download import download
    from aivp.providers.http import RetryPolicy

    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=15), follow_redirects=True) as client:
        base = _status_kib("VmRSS") * 1024
        reset_hwm()
        t0 = time.monotonic()
        with RssSampler() as s:
            got = await download(client, url, dest, policy=RetryPolicy(3, 0.1, 1.0))
        dt = time.monotonic() - t0
    size = got.size
    dest.unlink(missing_ok=True)
    return {"base": base, "peak": s.peak, "hwm": _status_kib("VmHWM") * 1024, "seconds": dt, "bytes": size,
            "samples": s.samples, "sha256": got.sha256[:12]}


async def child_raw(url: str, dest: Path) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=15)) as client:
        base = _status_kib("VmRSS") * 1024
        reset_hwm()
        t0 = time.monotonic()
        size = 0
        with RssSampler() as s:
            async with client.stream("GET", url) as r:
                r.raise_for_status()
                with dest.open("wb") as f:
                    async for chunk in r.aiter_bytes(1 << 20):
                        f.write(chunk)
                        size += len(chunk)
        dt = time.monotonic() - t0
    dest.unlink(missing_ok=True)
    return {"base": base, "peak": s.peak, "hwm": _status_kib("VmHWM") * 1024, "seconds": dt, "bytes": size,
            "samples": s.samples}


async def child_job(sandbox_url: str, size: int) -> dict[str, Any]:
    from mcp import Client

    from aivp.app import build_server
    from aivp.sandbox.control import env

    project = new_project("aivp-bench-mem-")
    settings = make_settings(project, env(sandbox_url), read_timeout_s=120.0)
    async with Client(build_server(settings)) as c:
        # warm-up with a small filler: imports av, PIL and the rest of the job path before measuring
        await c.call_tool("generate_video", {"prompt": "warm-up [sandbox:bytes=1048576]", "wait_s": 120})
        base = _status_kib("VmRSS") * 1024
        reset_hwm()
        t0 = time.monotonic()
        with RssSampler() as s:
            r = await c.call_tool("generate_video", {"prompt": f"huge output [sandbox:bytes={size}]", "wait_s": 600})
        dt = time.monotonic() - t0
    sc = r.structured_content or {}
    files = sc.get("files") or []
    check = (files[0].get("check") or {}) if files else {}
    got = files[0].get("bytes") if files else None
    for f in files:  # keep the disk clean
        Path(f["absolute_path"]).unlink(missing_ok=True)
    return {"base": base, "peak": s.peak, "hwm": _status_kib("VmHWM") * 1024, "seconds": dt, "bytes": got,
            "samples": s.samples, "status": sc.get("status"), "error": None if not r.is_error else r.content[0].text,  # type: ignore[union-attr]
            "check": check.get("message"), "check_ok": check.get("ok")}


def child_main(mode: str, target: str, size: int) -> None:
    dest = Path(os.environ.get("TMPDIR", "/tmp")) / f"aivp-bench-mem-{os.getpid()}.part"
    if mode == "download":
        out = asyncio.run(child_download(target, dest))
    elif mode == "raw":
        out = asyncio.run(child_raw(target, dest))
    else:
        out = asyncio.run(child_job(target, size))
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------ the parent


def filler_url(sb: SandboxProcess, size: int) -> str:
    """Submit a huge-output job with raw httpx and return its output URL."""
    import httpx

    h = {"Authorization": f"Key {FAKE_KEY}"}
    with httpx.Client(timeout=60) as c:
        sub = c.post(f"{sb.fal_queue_url}/{VIDEO_ENDPOINT}", json={"prompt": f"huge [sandbox:bytes={size}]"},
                     headers=h).json()
        while c.get(sub["status_url"], headers=h).json()["status"] != "COMPLETED":
            time.sleep(0.02)
        res = c.get(sub["response_url"], headers=h).json()
    return res["video"]["url"]


def measure(mode: str, target: str, size: int) -> dict[str, Any]:
    args = [sys.executable, str(Path(__file__).resolve()), "--child", mode, target, str(size)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} child failed ({p.returncode}): {p.stderr[-2000:]}")
    return json.loads(lines[-1])


def run(quick: bool = False, sizes_mib: list[int] | None = None) -> list[Row]:
    sizes_mib = sizes_mib or ([64, 256] if quick else [64, 256, 1024])
    results: dict[tuple[str, int], dict[str, Any]] = {}
    with SandboxProcess(queue_s=0, image_s=0, video_s=0) as sb:
        for mib_n in sizes_mib:
            size = mib_n << 20
            url = filler_url(sb, size)
            results[("raw", size)] = measure("raw", url, size)
            results[("download", size)] = measure("download", url, size)
            results[("job", size)] = measure("job", sb.url, size)
    print("4. memory while downloading a huge output (sandbox in its own process; each line a fresh child process;")
    print("   growth = peak VmRSS sampled every 20 ms during the download minus VmRSS just before it)")
    print(f"   {'':26}{'size':>10}{'RSS before':>12}{'peak RSS':>12}{'growth':>12}{'VmHWM':>12}{'time':>9}{'MB/s':>8}")
    rows: list[Row] = []
    for mib_n in sizes_mib:
        size = mib_n << 20
        for mode, label in (("raw", "raw httpx stream"), ("download", "aivp.download.download"),
                            ("job", "aivp generate_video job")):
            r = results[(mode, size)]
            growth = r["peak"] - r["base"]
            rate = (r["bytes"] or 0) / r["seconds"] / 1e6 if r["seconds"] else 0
            print(f"   {label:26}{mib(size):>10}{mib(r['base']):>12}{mib(r['peak']):>12}{mib(growth):>12}"
                  f"{mib(r['hwm']):>12}{r['seconds']:>8.2f}s{rate:>8.0f}")
            if mode == "job":
                said = re.sub(r"/tmp/\S+/", ".../", r["check"] or "")
                print(f"   {'':26}job status {r['status']}, {r['bytes']} bytes on disk; verify_video said: "
                      f"ok={r['check_ok']} {said!r}" + (f"; error: {r['error'][:200]}" if r["error"] else ""))
    biggest = max(sizes_mib) << 20
    smallest = min(sizes_mib) << 20
    for mode, name in (("download", "download()"), ("job", "full job")):
        g_big = results[(mode, biggest)]["peak"] - results[(mode, biggest)]["base"]
        g_small = results[(mode, smallest)]["peak"] - results[(mode, smallest)]["base"]
        raw_g = results[("raw", biggest)]["peak"] - results[("raw", biggest)]["base"]
        rows.append(Row(f"4. RSS growth, {name} of {mib(biggest)}", f"{mib(g_big)} (at {mib(smallest)}: {mib(g_small)})",
                        f"raw {mib(raw_g)}", f"- / flat: <= {mib(smallest)}'s + {FLAT_SLACK >> 20} MiB",
                        g_big <= g_small + FLAT_SLACK))
    r = results[("download", biggest)]
    raw = results[("raw", biggest)]
    rows.append(Row(f"4. time to download {mib(biggest)}", f"{r['seconds']:.2f} s", f"raw {raw['seconds']:.2f} s",
                    f"{r['seconds'] / raw['seconds']:.2f}x / -", None))
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="64 and 256 MiB only")
    ap.add_argument("--sizes", help="comma-separated sizes in MiB (default 64,256,1024)")
    args = ap.parse_args()
    emit_rows(run(args.quick, [int(x) for x in args.sizes.split(",")] if args.sizes else None))


if __name__ == "__main__":
    main()
