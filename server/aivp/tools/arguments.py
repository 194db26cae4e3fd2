"""Arguments as an agent sends them: unknown names refused (with a "did you mean"), bad values in one sentence.

The SDK validates tool arguments with pydantic, which ignores names a tool does not take (so
`durration=8` silently ran with the default duration) and reports bad values as pydantic's own
multi-line text with a documentation link. `StrictTool` checks first and answers in plain words;
the schemas also say `additionalProperties: false`, for clients that read them.
"""

from __future__ import annotations

import difflib
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import Prompt
from mcp.server.mcpserver.tools.base import Tool
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

INVALID_PARAMS = -32602  # JSON-RPC: invalid method parameters


def unknown_arguments(tool: str, arguments: dict[str, Any], known: list[str]) -> str | None:
    """The refusal for names a tool does not take, or None."""
    unknown = [name for name in arguments if name not in known]
    if not unknown:
        return None
    parts = []
    for name in unknown:
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        parts.append(f"{name!r} (did you mean {near[0]!r}?)" if near else repr(name))
    return (f"{tool} does not take {', '.join(parts)}; nothing was run. Its arguments are: "
            f"{', '.join(known)}.")


def plain_errors(tool: str, exc: ValidationError) -> str:
    """pydantic's errors as one sentence per field: the field, the value given and what is allowed."""
    said = []
    for e in exc.errors(include_url=False):
        field = ".".join(str(x) for x in e.get("loc", ()) if x != "__root__") or "the arguments"
        kind = e.get("type", "")
        if kind == "missing":
            said.append(f"{field} is required")
            continue
        value = _short(e.get("input"))
        ctx = e.get("ctx") or {}
        if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            bound = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most",
                     "less_than": "less than"}[kind]
            limit = next(iter(ctx.values()), "?")
            said.append(f"{field}={value} is out of range; it must be {bound} {limit}")
        elif kind == "literal_error":
            said.append(f"{field}={value} is not one of the choices; use {ctx.get('expected', 'a listed value')}")
        else:
            message = str(e.get("msg", "is not valid")).replace("Input should be", "it should be")
            said.append(f"{field}={value} is not valid: {message}")
    return f"{tool}: {'; '.join(said)}. Nothing was run; fix the argument and call again."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class StrictTool(Tool):
    """A registered tool that refuses unknown argument names and explains bad values in plain words."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        known = [name for name in self.parameters.get("properties", {})]
        refusal = unknown_arguments(self.name, arguments, known)
        if refusal is not None:
            raise ToolError(refusal)
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            raise ToolError(plain_errors(self.name, exc)) from None
        return await super().run(arguments, context, convert_result)


class StrictPrompt(Prompt):
    """A prompt that answers a missing or unknown argument with an invalid-params error naming it (the SDK's
    plain ValueError reached clients as "MCP error 0")."""

    async def render(self, arguments: dict[str, Any] | None, context: Any) -> Any:
        given = arguments or {}
        args = self.arguments or []
        missing = [a for a in args if a.required and a.name not in given]
        refusal = unknown_arguments(f"The prompt {self.name}", given, [a.name for a in args])
        if missing:
            need = "; ".join(f"{a.name} ({a.description or 'required'})" for a in missing)
            raise MCPError(INVALID_PARAMS, f"The prompt {self.name} needs {need}.")
        if refusal is not None:
            raise MCPError(INVALID_PARAMS, refusal)
        return await super().render(arguments, context)
