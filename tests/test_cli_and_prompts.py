"""Small things a user hits (issue 11 item 9): a closed pipe, prompt arguments."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio


def test_aivp_models_into_head_exits_cleanly() -> None:
    cmd = f"{sys.executable} -m aivp models | head -n 1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


async def test_prompt_arguments_are_described_and_checked(client: Client) -> None:
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    for p in prompts.values():
        assert all(a.description for a in p.arguments or []), p.name
    with pytest.raises(MCPError) as missing:
        await client.get_prompt("animate_keyframe", {"keyframe": "image/frames/shot-01-ff.png"})
    assert missing.value.code == -32602 and "needs motion" in missing.value.message
    with pytest.raises(MCPError) as unknown:
        await client.get_prompt("character_sheet", {"name": "Mara", "description": "x", "colour": "red"})
    assert "does not take 'colour'" in unknown.value.message
    ok = await client.get_prompt("animate_keyframe", {"keyframe": "image/frames/shot-01-ff.png", "motion": "a slow push"})
    assert "image/frames/shot-01-ff.png" in ok.messages[0].content.text  # type: ignore[union-attr]
