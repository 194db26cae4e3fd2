"""Shared helpers for the aivp benchmarks: settings against a sandbox, a sandbox in its own
process, percentiles, and the result rows `run_all.py` prints as one table.

Nothing here asserts anything about timings: the scripts measure and print.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# A fake key (the sandbox accepts any non-empty key); nothing leaves 127.0.0.1.
FAKE_KEY = "aivp-bench-key-id:bench-secret-not-real"


def hermetic_environ(home: Path) -> dict[str, str]:
    """os.environ without AIVP_* / provider keys, with AIVP_HOME in a temporary folder (no ~/.aivp/.env)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AIVP_") and k not in ("FAL_KEY", "FAL_API_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET")}
    env["AIVP_HOME"] = str(home / ".aivp")
    return env


def make_settings(project: Path, sandbox_env: dict[str, str], **overrides: Any) -> Any:
    """Settings as tests/conftest.make_settings builds them: sandbox URLs, a fake key, fast polling."""
    from aivp.settings import Secret, Settings

    env = {**sandbox_env, "AIVP_HOME": str(project.parent / "home" / ".aivp")}
    s = Settings.from_env(env, project_dir=project)
    # consent off (AIVP_CONFIRM_ABOVE_USD < 0): the benchmarks measure jobs, not a user saying yes
    fast = dict(keys={"fal": Secret(FAKE_KEY)}, retry_base_s=0.01, retry_cap_s=2.0, poll_initial_s=0.02, poll_max_s=0.2,
                sse_idle_s=2.0, wait_s=20.0, connect_timeout_s=5.0, read_timeout_s=20.0, confirm_above_usd=-1.0)
    fast.update(overrides)
    return replace(s, **fast)


def temp_dir(prefix: str = "aivp-bench-") -> Path:
    """A temporary folder removed when the process exits."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, root, True)
    return root


def new_project(prefix: str = "aivp-bench-") -> Path:
    """<tmp>/project (the aivp project root) beside <tmp>/home (AIVP_HOME's parent); removed at exit."""
    root = temp_dir(prefix)
    (root / "project").mkdir()
    (root / "home").mkdir()
    return root / "project"


# ------------------------------------------------------------------ statistics


def pct(values: list[float], p: float) -> float:
    """Percentile by linear interpolation (p in 0..100)."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


# ------------------------------------------------------------------ result rows


@dataclass
class Row:
    """One line of the summary table."""

    name: str
    aivp: str
    baseline: str
    ratio_target: str
    met: bool | None  # None: informational, no target

    @property
    def met_text(self) -> str:
        return "-" if self.met is None else ("yes" if self.met else "NO")


ROWS_ENV = "AIVP_BENCH_ROWS"  # run_all.py sets it to a file each script appends its summary rows to


def emit_rows(rows: list[Row]) -> None:
    """Hand the rows to run_all.py (when it started this script)."""
    path = os.environ.get(ROWS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r.__dict__) + "\n")


def print_table(rows: list[Row], title: str = "") -> None:
    headers = ("benchmark", "aivp", "baseline", "ratio / target", "met?")
    cells = [headers] + [(r.name, r.aivp, r.baseline, r.ratio_target, r.met_text) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}")
    line = "-+-".join("-" * w for w in widths)
    for i, c in enumerate(cells):
        print(" | ".join(v.ljust(w) for v, w in zip(c, widths)))
        if i == 0:
            print(line)


# ------------------------------------------------------------------ sandbox in its own process


class SandboxProcess:
    """`bench/_sandbox_proc.py` in a child process: its CPU and memory stay out of the measured process.

    The control API (`/_sandbox/stats`, `/_sandbox/config`, `/_sandbox/reset`) is how we talk to it.
    """

    def __init__(self, **options: float) -> None:
        self.options = options
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> SandboxProcess:
        args = [sys.executable, str(BENCH_DIR / "_sandbox_proc.py"), json.dumps(self.options)]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process did not start")
        self.url = json.loads(line)["url"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the child exits when its stdin closes
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def env(self) -> dict[str, str]:
        from aivp.sandbox.control import env

        return env(self.url)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        r = httpx.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def by_route(self) -> dict[str, int]:
        return dict(self.stats()["by_route"])

    def submissions(self) -> list[dict[str, Any]]:
        return self._call("GET", "submissions")

    def job(self, request_id: str) -> dict[str, Any]:
        """The sandbox's timestamps of one job (time.monotonic() of the sandbox process)."""
        import httpx

        r = httpx.get(f"{self.url}/_bench/jobs/{request_id}", timeout=30)
        r.raise_for_status()
        return r.json()

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the sandbox process has used so far."""
        return proc_cpu_s(self.pid)

    @property
    def fal_queue_url(self) -> str:
        return f"{self.url}/fal/queue"

    def configure(self, **settings: Any) -> None:
        self._call("POST", "config", settings)

    def reset(self) -> None:
        self._call("POST", "reset")


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(pred: Any, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False
