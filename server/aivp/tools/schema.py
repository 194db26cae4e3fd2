"""Smaller tool schemas: every agent reads tools/list into its context on every turn.

pydantic titles each property after its own name and spells an optional value as
`anyOf: [X, {type: null}]` with `default: null`; the titles tell an agent nothing and the optional
spelling has a shorter equivalent, `type: [X, null]`. The schemas stay exact: clients validate
results against them, and the SDK validates arguments with the pydantic models.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

# Every result is an object whose next_step says what to do next; the tool text says what else it holds.
RESULT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"next_step": {"type": "string"}}}
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
        if isinstance(inner.get("type"), str):
            out.pop("anyOf")
            # an optional argument (null by default) is sent or left out, never sent as null: {type: X};
            # a value that may really be null keeps {type: [X, null]}
            kind: Any = inner["type"] if out.get("default", 0) is None else [inner["type"], "null"]
            out = {**compact(inner, root=False, descriptions=descriptions), **out, "type": kind}
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and all(isinstance(x, dict) and set(x) == {"type"} and isinstance(x["type"], str)
                                        for x in any_of):  # {anyOf: [{type: integer}, {type: string}]}: one list
        out.pop("anyOf")
        out["type"] = [x["type"] for x in any_of]
    if "default" in out and is_empty_default(out["default"]):  # left out = null / false / empty: adds nothing
        out.pop("default")
    for key in SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [compact(x, root=False, descriptions=descriptions) for x in out[key]]
    for key in SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: compact(x, root=False, descriptions=descriptions) for name, x in out[key].items()}
    if out.get("additionalProperties") is True:  # JSON Schema's default: any keys
        out.pop("additionalProperties")
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = compact(out[key], root=False, descriptions=descriptions)
    return out


def is_empty_default(value: Any) -> bool:
    """None, False, [] or {}: what leaving the argument out means anyway (0 is a real default, not one of these)."""
    return value is None or value is False or (type(value) in (list, dict) and not value)


def compact_tools(server: Any) -> None:
    """Compact every registered tool's schemas in place and make it refuse unknown arguments (StrictTool)."""
    from .arguments import StrictPrompt, StrictTool

    for tool in server._tool_manager.list_tools():  # the SDK has no public setter; these fields are read live
        params = compact(tool.parameters)
        params.pop("title", None)  # "generate_imageArguments": the name says it
        tool.parameters = {**params, "additionalProperties": False}
        # docstring indentation and line breaks are not for the reader; paragraphs stay
        tool.description = re.sub(r"(?<!\n)\n(?!\n)", " ", inspect.cleandoc(tool.description))
        if tool.fn_metadata.output_schema is not None:
            # One small schema for every result instead of a full copy per tool (22k of tools/list): the
            # text says what a result holds, and every one is an object that says its next step.
            tool.fn_metadata.output_schema = dict(RESULT_SCHEMA)
        if tool.annotations is not None:
            tool.annotations = lean_annotations(tool.annotations)
        tool.__class__ = StrictTool  # same fields, a stricter run(): the manager calls tool.run(...)
    for prompt in server._prompt_manager.list_prompts():
        prompt.__class__ = StrictPrompt


# The spec's value for a hint left out. A hint that says only this is dropped: same meaning, fewer bytes
# in every session. Destructive and idempotent mean something only for a tool that is not read-only.
HINT_DEFAULTS = {"read_only_hint": False, "destructive_hint": True, "idempotent_hint": False, "open_world_hint": True}


def lean_annotations(a: Any) -> Any:
    drop = {k for k, v in HINT_DEFAULTS.items() if getattr(a, k) == v}
    if a.read_only_hint:
        drop |= {"destructive_hint", "idempotent_hint"}
    return a.model_copy(update=dict.fromkeys(drop))
