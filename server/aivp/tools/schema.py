"""Smaller tool schemas: every agent reads tools/list into its context on every turn.

pydantic titles each property after its own name and spells an optional value as
`anyOf: [X, {type: null}]` with `default: null`; the titles tell an agent nothing and the optional
spelling has a shorter equivalent, `type: [X, null]`. The schemas stay exact: clients validate
results against them, and the SDK validates arguments with the pydantic models.
"""

from __future__ import annotations

from typing import Any

SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SCHEMA_MAPS = ("properties", "$defs", "patternProperties")


def compact(node: Any, *, root: bool = True, descriptions: bool = True) -> Any:
    """`descriptions=False` drops property descriptions (output schemas: the tool text says what comes back)."""
    if not isinstance(node, dict):
        return node
    drop = {"title"} if descriptions else {"title", "description"}
    out = {k: v for k, v in node.items() if not (k in drop and isinstance(v, str) and not root)}
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and len(any_of) == 2 and {"type": "null"} in any_of:
        inner = next(x for x in any_of if x != {"type": "null"})
        if isinstance(inner.get("type"), str):  # {anyOf: [{type: X, ...}, {type: null}]} -> {type: [X, null], ...}
            out.pop("anyOf")
            out = {**compact(inner, root=False, descriptions=descriptions), **out, "type": [inner["type"], "null"]}
    if out.get("default", 0) is None:  # optional means null by default; saying so adds nothing
        out.pop("default")
    for key in SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [compact(x, root=False, descriptions=descriptions) for x in out[key]]
    for key in SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: compact(x, root=False, descriptions=descriptions) for name, x in out[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = compact(out[key], root=False, descriptions=descriptions)
    return out


def compact_tools(server: Any) -> None:
    """Compact every registered tool's schemas in place and make it refuse unknown arguments (StrictTool)."""
    from .arguments import StrictPrompt, StrictTool

    for tool in server._tool_manager.list_tools():  # the SDK has no public setter; these fields are read live
        tool.parameters = {**compact(tool.parameters), "additionalProperties": False}
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = compact(tool.fn_metadata.output_schema, descriptions=False)
        tool.__class__ = StrictTool  # same fields, a stricter run(): the manager calls tool.run(...)
    for prompt in server._prompt_manager.list_prompts():
        prompt.__class__ = StrictPrompt
