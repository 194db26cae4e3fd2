"""Run the aivp benchmarks, each in a fresh interpreter, then print one summary table.

    python bench/run_all.py            # full: 30 jobs, 200 concurrent, up to 1 GiB, 10 cold starts, 30-shot storyboard
    python bench/run_all.py --quick    # under ~2 minutes: 10 jobs, 100 concurrent, up to 256 MiB, 5 cold starts, 12 shots
    python bench/run_all.py --only 1,5 # a subset (numbers as in the README)

Nothing here asserts: the table says whether each target is met, and the exit code is 0 either way
(1 only when a benchmark itself crashed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, ROWS_ENV, Row, print_table  # noqa: E402

BENCHES = {  # number -> (title, script, extra args for the full run)
    "1": ("per-job overhead and HTTP requests per job (1 + 2)", "bench_job.py", ["--what-if"]),
    "3": ("200 concurrent 2 s jobs", "bench_concurrency.py", []),
    "4": ("memory while downloading huge outputs", "bench_memory.py", []),
    "5": ("cold start over stdio", "bench_coldstart.py", []),
    "6": ("a 30-shot storyboard through run_storyboard", "bench_storyboard.py", []),
    "7": ("the live model catalog: search cold/warm, checking a call against a large schema", "bench_catalog.py", []),
    "8": ("aivp over HTTP vs stdio: cold start, per-job overhead, 50 concurrent clients", "bench_http.py", []),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller N; 256 MiB instead of 1 GiB")
    ap.add_argument("--only", help="comma-separated benchmark numbers (1 covers 1 and 2): 1,3,4,5,6,7")
    args = ap.parse_args()
    wanted = [b.strip() for b in args.only.split(",")] if args.only else list(BENCHES)
    wanted = ["1" if w == "2" else w for w in wanted]

    rows_file = Path(tempfile.mkstemp(prefix="aivp-bench-rows-", suffix=".jsonl")[1])
    env = {**os.environ, ROWS_ENV: str(rows_file)}
    failed: list[str] = []
    started = time.monotonic()
    try:
        for key in BENCHES:
            if key not in wanted:
                continue
            title, script, full_args = BENCHES[key]
            cmd = [sys.executable, str(BENCH_DIR / script), *(["--quick"] if args.quick else full_args)]
            print(f"\n=== {title}: {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}", flush=True)
            t0 = time.monotonic()
            rc = subprocess.run(cmd, env=env).returncode
            print(f"    ({time.monotonic() - t0:.0f} s)", flush=True)
            if rc != 0:
                failed.append(f"{script} exited {rc}")
        rows = [Row(**json.loads(line)) for line in rows_file.read_text().splitlines() if line.strip()]
    finally:
        rows_file.unlink(missing_ok=True)
    mode = "quick" if args.quick else "full"
    print_table(rows, f"SUMMARY ({mode} run, {time.monotonic() - started:.0f} s; figures from this machine, "
                      f"{os.cpu_count()} CPUs; 'met?' compares with the project's targets)")
    for f in failed:
        print(f"!! {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
