"""`aivp serve` on stdio, with one guard the SDK's transport lacks: a bound on how deeply a request nests.

mcp 2.3.0's stdio reader hands each line to pydantic; a request nested a few hundred levels deep fails
that parse, and the transport drops it without an answer, so the client waits until its own timeout.
Here a line nested deeper than `MAX_DEPTH` is replaced, before the SDK sees it, by a request for a
method that does not exist, named for the reason: the client gets a JSON-RPC error (-32601, with the
reason in `data`) for the same id at once. Counting brackets is C-speed (`str.count`); only a line with
more than `MAX_DEPTH` of them is scanned.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

MAX_DEPTH = 100  # MCP messages nest a dozen levels; the SDK's parser gives up near 200
REFUSED = f"aivp/refused: the request nests deeper than {MAX_DEPTH} levels; send a flatter one"
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def depth_of(line: str) -> int:
    """How deeply a JSON text nests (strings skipped); cheap when it cannot be deep."""
    if line.count("[") + line.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    for m in _TOKEN.finditer(line):
        t = m.group()
        if t in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif t in "]}":
            depth -= 1
    return deepest


def top_level_id(line: str) -> Any:
    """The `id` member of the outer object (not one nested inside params), or None."""
    depth = 0
    expect_id_value = False
    pos = 0
    for m in _TOKEN.finditer(line):
        t = m.group()
        if expect_id_value:
            number = re.match(r"\s*:\s*(-?\d+)", line[pos:m.start()])
            if number:  # a number sits between the key and the next token
                return int(number.group(1))
            return json.loads(t) if t.startswith('"') else None
        if t in "[{":
            depth += 1
        elif t in "]}":
            depth -= 1
        elif depth == 1 and t == '"id"' and line[m.end():].lstrip().startswith(":"):
            expect_id_value, pos = True, m.end()
    return None


def guard(line: str) -> str:
    """The line as is, or a refusal the SDK answers with an error for the same id."""
    if depth_of(line) <= MAX_DEPTH:
        return line
    request_id = top_level_id(line)
    if request_id is None:  # a notification: nothing to answer, nothing to run
        return ""
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": REFUSED, "params": {}}) + "\n"


class GuardedLines:
    """stdin as the SDK reads it (an async iterator of lines), each line passed through `guard`."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for line in self._source:
            kept = guard(line)
            if kept:
                yield kept


async def run_stdio(server: MCPServer[Any]) -> None:
    """Serve MCP on this process's stdin/stdout, as `MCPServer.run("stdio")` does, with the depth guard."""
    import io
    import os
    import sys

    from mcp.server.stdio import stdio_server

    # Read fd 0 through our own file object; the SDK still claims stdout (stray prints go to stderr).
    raw = io.TextIOWrapper(os.fdopen(os.dup(sys.stdin.fileno()), "rb"), encoding="utf-8", errors="replace")
    try:
        guarded = GuardedLines(anyio.wrap_file(raw))  # the SDK only iterates it: `async for line in stdin`
        async with stdio_server(stdin=guarded) as (read_stream, write_stream):  # type: ignore[arg-type]
            low = server._lowlevel_server  # the SDK's own run_stdio_async does exactly this with its streams
            await low.run(read_stream, write_stream, low.create_initialization_options())
    finally:
        raw.close()
