"""The docs an agent reads agree with the code: SKILL.md's routing table with the router (and with a dry run
of each call it shows, with and without ARK_API_KEY), and every tool call and argument the skills name with
the tools' schemas from tools/list."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from aivp.app import build_server
from aivp.catalog.routing import DEFAULTS, Wants, choose, default_for
from aivp.domain.calls import EDIT_TASKS
from aivp.pipeline.plan import DEFAULT_HERO_MODEL, DEFAULT_VIDEO_MODEL

from .conftest import make_settings, png

ROOT = Path(__file__).resolve().parents[1]
SKILL = ROOT / "SKILL.md"
DOCS = [SKILL, *sorted(ROOT.glob("skills/*/SKILL.md")), ROOT / "references/calls.md"]
GENERATION = ("generate_image", "edit_image", "generate_video", "multi_shot_video")


@cache
def tools() -> dict[str, dict[str, Any]]:
    """name -> {"input": inputSchema, "output": outputSchema} from the real server's tools/list."""
    async def go() -> dict[str, dict[str, Any]]:
        async with Client(build_server(make_settings(ROOT / "tests"))) as c:
            return {t.name: {"input": t.input_schema, "output": t.output_schema or {}} for t in (await c.list_tools()).tools}

    return anyio.run(go)


def properties(schema: dict[str, Any], node: dict[str, Any] | None = None) -> dict[str, Any]:
    """The properties of a schema node, following a $ref into the schema's $defs and items of arrays."""
    node = schema if node is None else node
    for key in ("anyOf", "oneOf"):
        for option in node.get(key, []):
            if found := properties(schema, option):
                return found
    if "$ref" in node:
        node = schema.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1], {})
    if node.get("type") == "array" or "items" in node:
        return properties(schema, node.get("items", {}))
    props: dict[str, Any] = node.get("properties", {})
    return props


# ---------------------------------------------------------------- the routing table

def routing_rows() -> list[tuple[str, str, str | None]]:
    """(call, default model, model with ARK_API_KEY) for each row of SKILL.md's task table that names one."""
    text = SKILL.read_text(encoding="utf-8")
    table = text[text.index("## Task → tool → model"):text.index("## Must-knows")]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[1].startswith("`") or "(" not in cells[1]:
            continue
        picks = re.findall(r"`([^`]+)`", cells[2])
        if not picks:
            continue  # "as for keyframes": the same router, checked by its own row
        ark = re.search(r"with `ARK_API_KEY`: `([^`]+)`", cells[2])
        call = re.findall(r"`([^`]+)`", cells[1])[0]  # the first span: "`run_storyboard(mode="plan")`, then ..."
        rows.append((call, picks[0], ark.group(1) if ark else None))
    return rows


def parse_call(call: str) -> tuple[str, dict[str, Any]]:
    node = ast.parse(call, mode="eval").body
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name), call
    return node.func.id, {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}


FILL: dict[str, Any] = {
    "prompt": "the keeper at the lantern-room window at dusk, rain on the glass",
    "image": "image/characters/mara-front.png", "end_image": "image/frames/shot-02-lf.png",
    "mask": "image/frames/mask.png", "references": ["image/characters/mara-front.png", "image/locations/cafe.png"],
    "video": "video/clips/source.mp4", "shots": [{"prompt": "He turns.", "duration": 5}, {"prompt": "She answers.", "duration": 5}],
    "elements": [{"name": "Mara", "frontal_image": "image/characters/mara-front.png"}],
}


def filled(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """The table's `...` placeholders replaced by real project files and text."""
    out = {}
    for name, value in args.items():
        if value is Ellipsis or value == [Ellipsis]:
            value = ("video/clips/shot-01.mp4" if tool in ("generate_video", "multi_shot_video") else
                     "image/frames/shot-01-ff.png") if name == "output" else FILL[name]
        out[name] = value
    return out


def router_task(tool: str, args: dict[str, Any]) -> str:
    """The task the router is asked for, as domain/calls.py and domain/prepare.py derive it."""
    if tool == "generate_image":
        return "edit" if args.get("references") else "t2i"
    if tool == "edit_image":
        return EDIT_TASKS[args.get("operation", "edit")]
    if tool == "multi_shot_video":
        return "multi-shot"
    if args.get("video"):
        return "v2v"
    if args.get("image"):
        return "first-last-frame" if args.get("end_image") else "i2v"
    return "reference-to-video" if args.get("references") else "t2v"


def test_the_table_covers_every_default_and_states_it_as_the_router_does() -> None:
    rows = routing_rows()
    assert len(rows) >= 12, rows
    covered = set()
    for call, default, ark in rows:
        tool, args = parse_call(call)
        if tool == "run_storyboard":
            assert default == DEFAULT_VIDEO_MODEL and f"`{DEFAULT_HERO_MODEL}`" in SKILL.read_text(encoding="utf-8")
            continue
        task = router_task(tool, args)
        covered.add(task)
        prompt = str(args.get("prompt")) if isinstance(args.get("prompt"), str) else ""
        for byteplus, said in ((False, default), (True, ark or default)):
            if task == "remove-background":  # domain/prepare.pick: the specialist, whatever the image default
                found, _ = default_for(task)
            else:
                found, _ = choose(Wants(task, prompt=prompt, byteplus_ready=byteplus))
            assert found.model.id == said, (call, "ARK_API_KEY" if byteplus else "no key", found.model.id)
    assert set(DEFAULTS) <= covered, set(DEFAULTS) - covered


@pytest.mark.parametrize("ark", [False, True], ids=["no-keys", "ARK_API_KEY"])
def test_each_call_of_the_table_dry_runs_on_the_model_it_states(project: Path, ark: bool) -> None:
    from aivp.sandbox.video import render_video
    from PIL import Image

    for rel in ("image/characters/mara-front.png", "image/frames/shot-02-lf.png", "image/frames/mask.png",
                "image/locations/cafe.png"):
        png(project / rel, (1280, 720))
    (project / "video/clips").mkdir(parents=True)
    (project / "video/clips/source.mp4").write_bytes(render_video(
        size=(160, 90), duration_s=2, base=Image.new("RGB", (160, 90), "navy"), end=None, audio=False, label="src"))
    settings = make_settings(project, keys={"fal": None, **({"byteplus": "test-ark-key"} if ark else {})})
    rows = [(parse_call(call), default, ark_model) for call, default, ark_model in routing_rows()]

    async def go() -> list[tuple[str, str, str]]:
        seen = []
        async with Client(build_server(settings)) as c:
            for (tool, args), default, ark_model in rows:
                if tool not in GENERATION:
                    continue
                r = await c.call_tool(tool, {**filled(tool, args), "dry_run": True})
                assert not r.is_error, (tool, args, r.content[0].text)
                seen.append((f"{tool}({args})", (ark_model or default) if ark else default,
                             (r.structured_content or {}).get("model", "")))
        return seen

    for call, said, ran in anyio.run(go):
        assert ran == said, (call, ran)


# ---------------------------------------------------------------- tool names and arguments

CALL = re.compile(r"\b([a-z]+(?:_[a-z]+)+)\(")


def calls_in(text: str) -> list[tuple[str, str]]:
    """(tool, argument text) of every `name(...)` call written in a document (balanced brackets)."""
    found = []
    for m in CALL.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(text[i], 0)
            i += 1
        found.append((m.group(1), text[m.end():i - 1]))
    return found


def top_level(args: str) -> list[tuple[str, str]]:
    """(keyword, value text) of the top-level `name=value` arguments of a call's argument text."""
    out, depth, start, quote = [], 0, 0, ""
    parts = []
    for i, ch in enumerate(args):
        if quote:
            quote = "" if ch == quote and args[i - 1] != "\\" else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(args[start:i])
            start = i + 1
    parts.append(args[start:])
    for part in parts:
        m = re.match(r"\s*([a-z_]+)\s*=(?!=)(.*)", part, re.S)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_tool_call_in_the_docs_names_a_tool_and_its_arguments(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    schemas = tools()
    wrong = []
    for name, args in calls_in(text):
        if name not in schemas:
            wrong.append(f"{name}(): no such tool")
            continue
        schema = schemas[name]["input"]
        props = schema.get("properties", {})
        for arg, value in top_level(args):
            if arg not in props:
                wrong.append(f"{name}({arg}=...): no such argument")
                continue
            nested = properties(schema, props[arg]) if arg not in ("options", "args") else {}
            for key in re.findall(r"[{,]\s*\"([a-z_]+)\"\s*:", value) if nested else []:
                if key not in nested and not _inside_args(value, key):
                    wrong.append(f"{name}({arg}=[{{{key!r}: ...}}]): no such field")
    assert wrong == [], wrong


def _inside_args(value: str, key: str) -> bool:
    """A key of a batch item's `args` (another tool's arguments) is not a field of the item itself."""
    at = value.find(f'"{key}"')
    return '"args"' in value[:at]


def test_shared_arguments_and_options_tables_match_the_schemas() -> None:
    schemas = {name: t["input"].get("properties", {}) for name, t in tools().items()}
    calls = (ROOT / "references/calls.md").read_text(encoding="utf-8")
    shared = calls[calls.index("## Arguments every generation tool takes"):calls.index("## Naming a model")]
    named = re.findall(r"^\| `([a-z_]+)` \|", shared, re.M)
    assert len(named) >= 8
    for arg in named:
        for tool in ("generate_image", "edit_image", "generate_video"):
            assert arg in schemas[tool], (tool, arg)
        if arg != "max_cost_usd":  # the table says multi_shot_video takes every other one
            assert arg in schemas["multi_shot_video"], arg
    story = (ROOT / "skills/storyboard-to-video/SKILL.md").read_text(encoding="utf-8")
    options = story[story.index("## Options"):story.index("## Reruns")]
    for group in re.findall(r"^\| ((?:`[a-z_]+`(?:, )?)+) \|", options, re.M):
        for arg in re.findall(r"`([a-z_]+)`", group):
            assert arg in schemas["run_storyboard"], arg


def test_backticked_identifiers_in_the_skill_are_real_names() -> None:
    """A lower-case `identifier` in SKILL.md is a tool, an argument, a result field or a catalog value."""
    from aivp.catalog import catalog
    from aivp.tools.common import JobResult
    from aivp.tools.storyboard import StoryboardResult

    known = set(tools())
    for t in tools().values():
        known |= set(t["input"].get("properties", {}))
    for result in _result_models():  # tools/list shares one small output schema: the fields come from the models
        known |= set(result.model_fields)
    for model in (JobResult, StoryboardResult):  # the values of their `status` (`unknown`, `partial` ...)
        known |= set(re.findall(r"[a-z]+", str(model.model_fields["status"].description)))
    known |= {m.id for m in catalog().models} | {"remove_background", "restyle", "inpaint", "upscale", "edit"}
    text = SKILL.read_text(encoding="utf-8")
    names = set(re.findall(r"`([a-z][a-z0-9_]*)`", text))
    assert names - known == set()


def _result_models() -> list[type[Any]]:
    """Every pydantic model the tool modules define (their results and nested parts)."""
    import importlib
    import inspect
    import pkgutil

    from pydantic import BaseModel

    import aivp.tools

    found = []
    for info in pkgutil.iter_modules(aivp.tools.__path__):
        module = importlib.import_module(f"aivp.tools.{info.name}")
        found += [c for _, c in inspect.getmembers(module, inspect.isclass)
                  if issubclass(c, BaseModel) and c.__module__.startswith("aivp.")]
    return found


def test_paths_in_the_docs_follow_the_folder_convention() -> None:
    """Every image/... and video/... folder a skill or reference names is one layout.py builds."""
    from aivp import layout

    folders = {layout.CHARACTERS, layout.LOCATIONS, layout.STYLES, layout.FRAMES, layout.CANDIDATES, layout.CLIPS,
               layout.POSTERS, *layout.GENERATED.values(), *layout.LOG_DIR.values(), "image/plan.md", "video/plan.md"}
    docs = [*DOCS, *(p for p in ROOT.glob("references/*.md") if p not in DOCS)]
    wrong = set()
    for doc in docs:
        for path in re.findall(r"`((?:image|video)/[^`\s]+)`", doc.read_text(encoding="utf-8")):
            first_two = "/".join(path.split("/")[:2])
            if first_two not in folders and not re.fullmatch(r"(image|video)/[a-z0-9.+-]+", path):  # a MIME type
                wrong.add(f"{doc.name}: {path}")
    assert wrong == set()
