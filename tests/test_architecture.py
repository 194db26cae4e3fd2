"""Structural rules that keep aivp easy to change (ARCHITECTURE.md): checked on the source, nothing imported."""

from __future__ import annotations

import re
from pathlib import Path

import aivp

PACKAGE = Path(aivp.__file__).resolve().parent
WRITERS = {"jobs/runner.py", "jobs/drive.py", "jobs/reconcile.py", "ledger.py"}
STATE_CALLS = re.compile(r"\bledger\.(insert|update|claim|heartbeat|release)\(")


def sources() -> dict[str, str]:
    return {p.relative_to(PACKAGE).as_posix(): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}


def test_only_the_runner_writes_job_state() -> None:
    offenders = {name: STATE_CALLS.findall(text) for name, text in sources().items()
                 if name not in WRITERS and STATE_CALLS.search(text)}
    assert offenders == {}


def test_the_check_sees_a_state_write() -> None:
    assert STATE_CALLS.search("        self.ledger.update(job_id, state='completed')")
    assert not STATE_CALLS.search("ledger.spend()")


def test_no_module_passes_400_lines() -> None:
    long = {name: text.count("\n") for name, text in sources().items() if text.count("\n") > 400}
    assert long == {}


def test_nothing_below_the_app_imports_the_tools() -> None:
    importers = {name for name, text in sources().items()
                 if re.search(r"^\s*from (\.\.?tools|aivp\.tools)\b|^\s*import aivp\.tools", text, re.M)
                 and not name.startswith("tools/") and name != "app.py"}
    assert importers == set()


def test_building_the_server_leaves_the_heavy_packages_for_first_use() -> None:
    """Start-up stays flat (bench 5): the storyboard reader, the live catalog, Pillow, PyAV (and httpx's CLI, which pulls in pygments) load when a call
    needs them, never because the server was built."""
    code = ("import sys; from aivp.app import build_server; from aivp.settings import Settings; "
            "build_server(Settings.from_env({}, project_dir=sys.argv[1])); "
            "print(sorted(m for m in ('aivp.storyboard', 'aivp.catalog.live', 'PIL', 'av', 'pygments') "
            "if m in sys.modules))")
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", code, d], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
