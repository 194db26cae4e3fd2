"""The `aivp` command: serve (stdio MCP), sandbox, demo, models, jobs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aivp", description="MCP server for AI video production.")
    parser.add_argument("--version", action="version", version=f"aivp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the MCP server on stdio (what MCP clients start)")
    p.add_argument("--project", help="project folder (default: AIVP_PROJECT_DIR, else the working directory)")

    p = sub.add_parser("sandbox", help="run the local fal-compatible sandbox server")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--host", default="127.0.0.1")

    p = sub.add_parser("demo", help="run the main job end to end on the embedded sandbox (no key, no network)")
    p.add_argument("--project", help="folder to create (default: a new aivp-demo-<time> folder here)")

    p = sub.add_parser("models", help="list catalog models")
    p.add_argument("--task", help="only models that do this task (t2i, edit, i2v, ...)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the catalog as Markdown (references/models.md)")
    p.add_argument("--check", metavar="FILE", help="exit 1 if FILE is not the current generated Markdown")

    p = sub.add_parser("jobs", help="list jobs in a project's ledger")
    p.add_argument("--project", help="project folder (default: AIVP_PROJECT_DIR, else the working directory)")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")

    args = parser.parse_args(argv)
    return {"serve": _serve, "sandbox": _sandbox, "demo": _demo, "models": _models, "jobs": _jobs}[args.command](args)


def _serve(args: argparse.Namespace) -> int:
    from .app import build_server, configure_logging
    from .errors import ConfigError
    from .settings import Settings

    try:
        settings = Settings.from_env(project_dir=args.project)
    except ConfigError as exc:
        print(f"aivp: {exc}", file=sys.stderr)
        return 2
    server = build_server(settings)
    configure_logging(settings)
    server.run("stdio")
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox import serve

    serve(host=args.host, port=args.port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.project) if args.project else None)


def _models(args: argparse.Namespace) -> int:
    from .catalog.docs import render_markdown
    from .catalog.search import search

    if args.markdown or args.check:
        text = render_markdown()
        if args.check:
            current = Path(args.check).read_text(encoding="utf-8") if Path(args.check).is_file() else ""
            if current != text:
                print(f"{args.check} is stale; run: aivp models --markdown {args.check}", file=sys.stderr)
                return 1
            return 0
        Path(args.markdown).write_text(text, encoding="utf-8")
        print(f"wrote {args.markdown}")
        return 0
    rows = search(task=args.task, limit=1000)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['id']:<28} {r['kind']:<6} {','.join(r['tasks']):<34} ~${r['typical_cost_usd']:<7.3f} {r['summary']}")
    return 0


def _jobs(args: argparse.Namespace) -> int:
    from .ledger import Ledger
    from .settings import Settings

    settings = Settings.from_env(project_dir=args.project)
    path = settings.project_dir / ".aivp" / "ledger.sqlite3"
    if not path.is_file():
        print(f"No jobs yet in {settings.project_dir}.", file=sys.stderr)
        return 0
    ledger = Ledger(path)
    rows = ledger.recent(args.limit)
    spend = ledger.spend()
    if args.json:
        print(json.dumps({"jobs": [{"id": r.id, "state": r.state, "model": r.model_id, "endpoint": r.endpoint,
                                    "request_id": r.request_id, "files": [o["path"] for o in r.outputs],
                                    "estimate_usd": r.estimate_usd, "cost_usd": r.cost_usd, "error": r.error,
                                    "created_at": r.created_at} for r in rows], "spend": spend}, indent=2))
        return 0
    for r in rows:
        files = ", ".join(o["path"] for o in r.outputs) or (r.error or "")[:60]
        print(f"{r.id}  {r.state:<10} {r.model_id:<24} {files}")
    print(f"spent ${spend['spent_usd']:.2f}, running ${spend['committed_usd']:.2f}, {spend['completed_jobs']} completed")
    return 0
