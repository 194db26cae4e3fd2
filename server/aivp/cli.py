"""The `aivp` command: serve (MCP on stdio, or streamable HTTP with --http), review (the review page in a
browser), sandbox, demo, models, jobs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aivp", description="MCP server for AI video production.")
    parser.add_argument("--version", action="version", version=f"aivp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the MCP server on stdio (what MCP clients start), or over HTTP with --http")
    p.add_argument("--project", help="project folder (default: AIVP_PROJECT_DIR, else the working directory)")
    p.add_argument("--http", action="store_true", help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="with --http: address to listen on (default 127.0.0.1; any other "
                                                      "address needs AIVP_HTTP_TOKENS or OAuth settings)")
    p.add_argument("--port", type=int, default=8000, help="with --http: port (default 8000)")

    p = sub.add_parser("review", help="open the review page (candidates, clips, storyboard) in a browser")
    p.add_argument("--project", help="project folder (default: AIVP_PROJECT_DIR, else the working directory)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-open", action="store_true", help="only print the link; do not open a browser")

    p = sub.add_parser("sandbox", help="run the local fal-compatible sandbox server")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--host", default="127.0.0.1")

    p = sub.add_parser("demo", help="run the main job end to end on the embedded sandbox (no key, no network)")
    p.add_argument("--project", help="folder to create (default: a new aivp-demo-<time> folder here)")

    p = sub.add_parser("run-storyboard", help="plan or run the project's storyboard (portraits, keyframes, clips)")
    p.add_argument("--project", help="project folder (default: AIVP_PROJECT_DIR, else the working directory)")
    p.add_argument("--plan", action="store_true", help="only show the steps, models and cost; spend nothing")
    p.add_argument("--shots", help="only these shots, e.g. 1,3,5")
    p.add_argument("--multi-shot", action="store_true", help="Kling O3 multi-shot for dialogue scenes")
    p.add_argument("--video-model", help="clip model (default seedance-2.0)")
    p.add_argument("--image-model", help="portrait and keyframe model (default: AIVP_IMAGE_MODEL, else Seedream on BytePlus "
                                         "when ARK_API_KEY is set, else nano-banana-pro)")
    p.add_argument("--hero", help="shots for the hero model, e.g. 6")
    p.add_argument("--redo", help="shots to make again, e.g. 2,4")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--yes", action="store_true", help="spend without asking (otherwise a run above "
                                                      "AIVP_CONFIRM_ABOVE_USD asks on the terminal first)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("models", help="list catalog models")
    p.add_argument("--task", help="only models that do this task (t2i, edit, i2v, ...)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--markdown", metavar="DIR", help="write the catalog as Markdown into DIR: models.md (the index) "
                                                     "and models-<kind>.md (references/; a file in DIR names DIR)")
    p.add_argument("--check", metavar="DIR", help="exit 1 if the generated Markdown in DIR is missing, stale or left over")
    p.add_argument("--check-live", action="store_true",
                   help="compare every curated entry with the providers' live schemas and prices; exit 1 when a "
                        "difference would break a call (2 when nothing could be checked)")

    p = sub.add_parser("jobs", help="list jobs in a project's ledger")
    p.add_argument("--project", help="project folder (default: AIVP_PROJECT_DIR, else the working directory)")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")

    args = parser.parse_args(argv)
    commands = {"serve": _serve, "review": _review, "sandbox": _sandbox, "demo": _demo, "models": _models, "jobs": _jobs,
                "run-storyboard": _run_storyboard}
    try:
        return commands[args.command](args)
    except BrokenPipeError:  # `aivp models | head`: the reader left; stop quietly, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0


def _serve(args: argparse.Namespace) -> int:
    from .app import build_server, configure_logging
    from .errors import ConfigError
    from .settings import Settings

    try:
        settings = Settings.from_env(project_dir=args.project)
        if args.http:
            from .http.app import http_settings

            settings = http_settings(settings, args.host, args.port)
    except ConfigError as exc:
        print(f"aivp: {exc}", file=sys.stderr)
        return 2
    server = build_server(settings)
    configure_logging(settings)
    if not args.http:
        import anyio

        from .stdio import run_stdio

        anyio.run(run_stdio, server)
        return 0
    from .http.app import serve

    review = review_mount(settings)
    how = "open it with a one-time link: GET /review/link with a token" if settings.http_tokens or \
        settings.oauth_issuer else "no auth: this machine only"
    print(f"aivp: the review page is at {settings.download_base}/review/ ({how})", file=sys.stderr, flush=True)
    serve(server, settings, host=args.host, port=args.port, **review)
    return 0


def review_mount(settings: Any) -> dict[str, Any]:
    """The review page under /review/ of `serve --http`, as create_app's options: behind the same auth with
    aivp:generate (the page can start paid jobs), one-time links and a session cookie for the browser, and
    its own aivp server in this process, opened with the app (it acts like a second aivp process on the
    project: each job is driven by one of them)."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from starlette.routing import Mount

    from .app import build_server
    from .http.auth import GENERATE
    from .review.routes import ClientBackend, Slot, review_routes

    slot = Slot()

    @asynccontextmanager
    async def backend() -> AsyncIterator[None]:
        from mcp import Client

        async with Client(build_server(settings)) as client:
            slot.backend = ClientBackend(client)
            try:
                yield
            finally:
                slot.backend = None

    return {"routes": [Mount("/review", routes=review_routes(slot, settings.project_dir))], "route_scope": GENERATE,
            "page_prefix": "/review/", "lifespan": backend}


def _review(args: argparse.Namespace) -> int:
    """The review page on 127.0.0.1, backed by an aivp server in this process (its tools, its job runner)."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from .app import build_server, configure_logging
    from .errors import ConfigError
    from .review.routes import ClientBackend
    from .review.serve import ReviewServer
    from .settings import Settings

    try:
        settings = Settings.from_env(project_dir=args.project)
    except ConfigError as exc:
        print(f"aivp: {exc}", file=sys.stderr)
        return 2
    if not settings.project_dir.is_dir():
        print(f"aivp: {settings.project_dir} is not a folder; pass --project with the project folder.", file=sys.stderr)
        return 2

    @asynccontextmanager
    async def backend() -> AsyncIterator[ClientBackend]:
        from mcp import Client

        async with Client(build_server(settings)) as client:
            yield ClientBackend(client)

    try:
        server = ReviewServer(settings.project_dir, backend, port=args.port)
    except OSError as exc:
        print(f"aivp: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); pass another --port, or none "
              "for a free one.", file=sys.stderr)
        return 2
    configure_logging(settings)
    print(f"Review: {server.link}", flush=True)  # the one line on stdout
    if not args.no_open:
        _open_browser(server.link)
    print("aivp review: Ctrl-C stops it. The link works once; the browser that opened it keeps working.",
          file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


def _open_browser(url: str) -> None:
    """Open the default browser, with whatever the launcher prints sent to stderr (stdout has one line)."""
    import os
    import webbrowser

    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        webbrowser.open(url)
    except Exception as exc:
        print(f"aivp: could not open a browser ({exc}); open the link above.", file=sys.stderr)
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox import serve

    serve(host=args.host, port=args.port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.project) if args.project else None)


def _models(args: argparse.Namespace) -> int:
    from .catalog import docs
    from .catalog.search import search

    if args.check_live:
        return _check_live(args.json)
    if args.check:
        folder = docs.folder_of(args.check)
        problems = docs.stale(folder)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"run: aivp models --markdown {folder}/", file=sys.stderr)
        return 1 if problems else 0
    if args.markdown:
        folder = docs.folder_of(args.markdown)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in docs.render_all().items():
            (folder / name).write_text(text, encoding="utf-8")
            print(f"wrote {folder / name} ({len(text):,} characters)")
        return 0
    rows = search(task=args.task, limit=1000)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['id']:<28} {r['kind']:<6} {','.join(r['tasks']):<34} ~${r['typical_cost_usd']:<7.3f} {r['summary']}")
    return 0


def _check_live(as_json: bool) -> int:
    import anyio
    import httpx

    from .catalog.drift import Difference, check_live, table
    from .errors import ConfigError
    from .settings import Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"aivp: {exc}", file=sys.stderr)
        return 2

    async def run() -> tuple[list[Difference], dict[str, int], list[str]]:
        from .domain.live import build

        async with httpx.AsyncClient(timeout=settings.catalog_timeout_s, follow_redirects=True) as client:
            return await check_live(build(settings, client))

    found, counts, notes = anyio.run(run)
    breaking = [d for d in found if d.breaking]
    if as_json:
        print(json.dumps({"differences": [d.as_dict() for d in found], "counts": counts, "notes": notes}, indent=2))
    else:
        if found:
            print(table(found))
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"{counts['checked']} routes checked ({counts['not_checked']} without a live source), "
              f"{len(found)} difference(s), {len(breaking)} that would break a call.")
    if counts["checked"] and len(notes) >= counts["checked"]:
        return 2
    return 1 if breaking else 0


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
                                    "estimate_usd": r.estimate_usd, "cost_usd": r.charged_usd, "sandbox": r.sandbox,
                                    "would_cost_usd": r.would_cost_usd, "error": r.error,
                                    "created_at": r.created_at} for r in rows], "spend": spend}, indent=2))
        return 0
    for r in rows:
        files = ", ".join(o["path"] for o in r.outputs) or (r.error or "")[:60]
        print(f"{r.id}  {r.state:<10} {r.model_id:<24} {'sandbox  ' if r.sandbox else ''}{files}")
    sandbox = f", ${spend['would_cost_usd']:.2f} would have been charged (sandbox)" if spend["would_cost_usd"] else ""
    print(f"spent ${spend['spent_usd']:.2f} (real), running ${spend['committed_usd']:.2f}{sandbox}, "
          f"{spend['completed_jobs']} completed")
    return 0


def _run_storyboard(args: argparse.Namespace) -> int:
    """The run_storyboard tool through an in-process MCP client, waiting until the run ends."""
    import anyio

    from .settings import Settings

    def shots(text: str | None) -> list[str] | None:
        return [t.strip() for t in text.split(",") if t.strip()] if text else None

    request = {"mode": "plan" if args.plan else "run", "multi_shot": args.multi_shot, "concurrency": args.concurrency,
               "shots": shots(args.shots), "hero_shots": shots(args.hero), "redo": shots(args.redo),
               "video_model": args.video_model, "image_model": args.image_model, "wait_s": 600}
    settings = Settings.from_env(project_dir=args.project)

    async def go() -> int:
        from mcp import Client
        from mcp.types import ElicitResult

        from .app import build_server, text_of

        async def progress(progress: float, total: float | None, message: str | None) -> None:
            print(f"  {message}", file=sys.stderr, flush=True)

        async def consent(context: Any, params: Any) -> ElicitResult:  # spend consent, asked on the terminal
            if args.yes:
                return ElicitResult(action="accept", content={"approve": True})
            if not sys.stdin.isatty():
                print(f"{params.message}\nNot confirmed: run again with --yes to spend.", file=sys.stderr)
                return ElicitResult(action="decline")
            said = await anyio.to_thread.run_sync(input, f"{params.message} [y/N] ")
            approve = said.strip().lower() in ("y", "yes")
            return ElicitResult(action="accept", content={"approve": approve})

        async with Client(build_server(settings), elicitation_callback=consent) as client:
            args_in = {k: v for k, v in request.items() if v not in (None, False)}
            result = await client.call_tool("run_storyboard", args_in, progress_callback=progress)
            while not result.is_error and result.structured_content and result.structured_content["status"] == "running":
                result = await client.call_tool("run_storyboard", {"mode": "run", "wait_s": 600},
                                                progress_callback=progress)
            if result.is_error:
                print(text_of(result), file=sys.stderr)
                return 1
            data = result.structured_content or {}
            if args.json:
                print(json.dumps(data, indent=2, ensure_ascii=False))
            else:
                print(text_of(result))
                for st in data.get("steps", []):
                    print(f"  {st['kind']:<9} {', '.join(st['files'])[:52]:<52} {st['model']:<18} {st['mode']:<6} "
                          f"{st['status']:<8} ${st['estimate_usd']:.3f}  {st['error'] or ''}")
                for p in data.get("problems", []):
                    print(f"  problem: {p['file']}:{p['line'] or '-'}: {p['message']}")
            return 0 if data.get("status") in ("planned", "done") else 1

    return anyio.run(go)
