"""Spend consent (tools/consent.py): when aivp asks, how it asks in both protocol eras, and that nothing is
submitted unless the user accepted or the client confirmed the amount."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import ElicitResult

from aivp.app import build_server
from aivp.demo import SAMPLE

from .conftest import TOKENS, http_client, http_server, make_settings, png

pytestmark = pytest.mark.anyio
IMAGE = {"prompt": "a frame worth asking about", "output": "image/frames/shot-01-ff.png"}  # nano-banana-pro, $0.15
PAID = {"generate_image", "edit_image", "generate_video", "multi_shot_video", "run_storyboard", "make_asset_sheet",
        "generate_candidates", "batch_generate"}


def answer(action: str, approve: bool = True) -> tuple[Any, list[str]]:
    asked: list[str] = []

    async def on_elicit(ctx: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        assert params.requested_schema["properties"]["approve"]["type"] == "boolean"
        return ElicitResult(action=action, content={"approve": approve} if action == "accept" else None)  # type: ignore[arg-type]

    return on_elicit, asked


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("action,approve,submitted,said", [
    ("accept", True, 1, None),
    ("accept", False, 0, "said no to"),
    ("decline", True, 0, "declined"),
    ("cancel", True, 0, "did not answer"),
])
async def test_elicitation_over_http(project: Path, sandbox: Any, mode: str, action: str, approve: bool,
                                     submitted: int, said: str | None) -> None:
    settings = make_settings(project, sandbox, confirm_above_usd=0.10)
    on_elicit, asked = answer(action, approve)
    async with http_server(settings, tokens=TOKENS) as url, \
            http_client(url, TOKENS["alice"], mode=mode, elicitation_callback=on_elicit) as c:
        r = await c.call_tool("generate_image", IMAGE)
    assert len(asked) == 1, asked  # asked once, also when the 2026-07-28 client calls again with the answer
    assert "$0.15" in asked[0] and "nano-banana-pro" in asked[0] and "image/frames/shot-01-ff.png" in asked[0]
    assert "AIVP_CONFIRM_ABOVE_USD" in asked[0]
    assert sandbox.submission_count() == submitted
    if said is None:
        assert not r.is_error and r.structured_content["status"] == "completed"
    else:
        assert r.is_error and said in r.content[0].text and "Nothing was charged" in r.content[0].text
        assert not (project / "image/frames/shot-01-ff.png").exists()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_that_cannot_ask_must_confirm_the_amount(project: Path, sandbox: Any, mode: str) -> None:
    settings = make_settings(project, sandbox, confirm_above_usd=0.10)
    async with http_server(settings, tokens=TOKENS) as url, http_client(url, TOKENS["bob"], mode=mode) as c:
        refused = await c.call_tool("generate_image", IMAGE)
        assert refused.is_error and "confirm_spend_usd=0.15" in refused.content[0].text
        assert "cannot ask the user" in refused.content[0].text
        low = await c.call_tool("generate_image", {**IMAGE, "confirm_spend_usd": 0.1})
        assert low.is_error and "below" in low.content[0].text
        assert sandbox.submission_count() == 0
        ok = await c.call_tool("generate_image", {**IMAGE, "confirm_spend_usd": 0.15})
        assert not ok.is_error and ok.structured_content["status"] == "completed"
    assert sandbox.submission_count() == 1


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_when_aivp_asks(project: Path, sandbox: Any, mode: str) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    on_elicit, asked = answer("accept")

    async def run(**settings: Any) -> Any:
        async with Client(build_server(make_settings(project, sandbox, **settings)), mode=mode,
                          elicitation_callback=on_elicit) as c:
            return await c.call_tool("generate_image", {"prompt": f"take {len(asked)} {settings}"})

    assert not (await run(confirm_above_usd=1.0)).is_error and asked == []  # $0.15 is under the default $1.00
    assert not (await run(confirm_above_usd=-1.0)).is_error and asked == []  # negative: never
    assert not (await run(confirm_above_usd=0.0)).is_error and len(asked) == 1  # 0: every paid call
    assert "every paid call" in asked[0]
    async with Client(build_server(make_settings(project, sandbox, confirm_above_usd=0.0)), mode=mode,
                      elicitation_callback=on_elicit) as c:
        dry = await c.call_tool("generate_image", {"prompt": "only the price", "dry_run": True})
        plan = await c.call_tool("run_storyboard", {"mode": "plan"})
    assert not dry.is_error and not plan.is_error and len(asked) == 1  # dry runs and plans never ask


async def test_the_session_budget_asks_once_the_session_would_pass_it(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox, confirm_above_usd=-1.0, session_budget_usd=0.40, sandboxes=())
    async with Client(build_server(settings)) as c:
        for n in range(2):  # $0.30 of $0.40
            assert not (await c.call_tool("generate_image", {"prompt": f"frame {n}"})).is_error
        r = await c.call_tool("generate_image", {"prompt": "frame 3"})
        assert r.is_error and "AIVP_SESSION_BUDGET_USD" in r.content[0].text and "$0.40" in r.content[0].text
        assert sandbox.submission_count() == 2
        assert not (await c.call_tool("generate_image", {"prompt": "frame 3", "confirm_spend_usd": 0.15})).is_error
    async with Client(build_server(settings)) as c:  # a new server process is a new session
        assert not (await c.call_tool("generate_image", {"prompt": "frame 4"})).is_error


async def test_the_project_budget_still_applies(project: Path, sandbox: Any) -> None:
    settings = make_settings(project, sandbox, confirm_above_usd=0.0, budget_usd=0.10, sandboxes=())
    async with Client(build_server(settings)) as c:
        r = await c.call_tool("generate_image", {**IMAGE, "confirm_spend_usd": 1.0})
        assert r.is_error and "budget" in r.content[0].text.lower()
    assert sandbox.submission_count() == 0


async def test_every_paid_tool_asks_before_it_submits(project: Path, sandbox: Any) -> None:
    shutil.copytree(SAMPLE, project, dirs_exist_ok=True)
    png(project / "image/frames/shot-01-ff.png")
    calls: dict[str, dict[str, Any]] = {
        "generate_image": {"prompt": "p"},
        "edit_image": {"image": "image/frames/shot-01-ff.png", "prompt": "make it night"},
        "generate_video": {"prompt": "waves", "image": "image/frames/shot-01-ff.png"},
        "multi_shot_video": {"shots": [{"prompt": "a", "duration": 3}, {"prompt": "b", "duration": 3}]},
        "run_storyboard": {"mode": "run"},
        "make_asset_sheet": {"name": "Mara", "description": "a lighthouse keeper in a yellow coat"},
        "generate_candidates": {"shot": 1, "prompt": "the first frame", "count": 2},
        "batch_generate": {"items": [{"label": "a", "args": {"prompt": "one"}}, {"label": "b", "args": {"prompt": "two"}}]},
    }
    settings = make_settings(project, sandbox, confirm_above_usd=0.0)
    async with Client(build_server(settings)) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert {n for n, t in tools.items() if "confirm_spend_usd" in t.input_schema["properties"]} == PAID == set(calls)
        for name, args in calls.items():
            r = await c.call_tool(name, args)
            assert r.is_error and "confirm_spend_usd=" in r.content[0].text, (name, r.content[0].text)
        assert sandbox.submission_count() == 0
        confirmed = await c.call_tool("batch_generate", {**calls["batch_generate"], "confirm_spend_usd": 0.30})
        assert not confirmed.is_error and confirmed.structured_content["done"], confirmed.content[0].text
    assert sandbox.submission_count() == 2
