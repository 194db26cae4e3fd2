"""Builds the MCP server: lifespan (ledger, one shared httpx client, job runner) and registrations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
import anyio
import httpx
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

from . import __version__
from .ledger import Ledger
from .project import Project
from .settings import Settings
from .domain.studio import Studio

log = logging.getLogger("aivp")

INSTRUCTIONS = """\
aivp makes images and video clips for a video project on hosted models (fal.ai) and saves every result
in the project folder with a JSON record. Read the aivp://skill resource for which tool and model to use.
Generation calls wait up to wait_s (default 45 s) and then return a job_id while the job keeps running:
collect it with queue_status(job_id, wait_s=30). Identical calls are not paid twice. Paths are relative to
the project root; keyframes go to image/frames/shot-NN-ff.png, clips to video/clips/shot-NN.mp4.
"""


def build_server(settings: Settings) -> MCPServer[Studio]:
    """The aivp MCP server for one project. Nothing touches the network until a tool needs it."""

    @asynccontextmanager
    async def lifespan(server: MCPServer[Studio]) -> AsyncIterator[Studio]:
        from .jobs import JobRunner
        from .providers import create_all

        project = Project(settings.project_dir, settings.extra_roots)
        try:
            ledger: Ledger | Exception = Ledger(project.state_dir / "ledger.sqlite3")
        except Exception as exc:  # an unwritable cwd must not stop the server listing tools
            log.warning("no ledger in %s: %s", project.state_dir, exc)
            ledger = exc
        timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=True) as client:
            runner = None
            if isinstance(ledger, Ledger):
                runner = JobRunner(settings, ledger, project, create_all(settings, client), client)
            async with anyio.create_task_group() as tg:
                if runner is not None:
                    await tg.start(runner.run)
                try:
                    yield Studio(settings, project, ledger, runner)
                finally:
                    tg.cancel_scope.cancel()
        if isinstance(ledger, Ledger):
            ledger.close()

    from .tools import assets, batch, candidates, catalog, generate, jobs, multishot, resources, review, storyboard

    server: MCPServer[Studio] = MCPServer(
        "aivp", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan,
        log_level=settings.log_level,  # type: ignore[arg-type]
        extensions=[review.apps()],  # MCP Apps: the review page as ui:// resources
    )

    generate.register(server)
    multishot.register(server)
    storyboard.register(server)
    assets.register(server)
    candidates.register(server)
    batch.register(server)
    jobs.register(server)
    catalog.register(server)
    resources.register(server)
    review.register(server)
    from .tools.schema import compact_tools

    compact_tools(server)
    return server


def configure_logging(settings: Settings) -> None:
    """Log to stderr (stdout carries the protocol), with every known secret scrubbed."""
    secrets = settings.secrets()

    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if secrets:
                from .settings import redact

                record.msg = redact(record.getMessage(), secrets)
                record.args = None
            return True

    root = logging.getLogger()
    for h in root.handlers:
        h.addFilter(Redact())
    logging.getLogger("aivp").setLevel(settings.log_level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def text_of(result: CallToolResult) -> str:
    """The text a tool result carries (its first text block), for the command-line front ends."""
    return next((c.text for c in result.content if isinstance(c, TextContent)), "")
