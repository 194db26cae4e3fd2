"""aivp: an MCP server and Agent Skill for AI video production."""

import sys as _sys
import types as _types

__version__ = "0.1.0"


def _skip_httpx_cli() -> None:
    """`import httpx` also imports its command-line client (click, rich, pygments) whenever click is installed,
    and uvicorn brings click: ~45 ms of every server start for a CLI aivp never runs. A stand-in `httpx._main`
    keeps httpx's own fallback behaviour (its `main` explains that the CLI is unavailable)."""
    if "httpx" in _sys.modules or "httpx._main" in _sys.modules:
        return
    stub = _types.ModuleType("httpx._main")

    def main() -> None:
        print("The httpx command line client is not loaded inside aivp; run it from its own process.", file=_sys.stderr)

    stub.main = main  # type: ignore[attr-defined]
    _sys.modules["httpx._main"] = stub


_skip_httpx_cli()
