"""batch_generate: items checked up front, run in parallel, one failure never stops the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from .conftest import ok, png, refused

pytestmark = pytest.mark.anyio


async def test_one_failing_item_while_the_others_finish(paid_client: Client, project: Path, sandbox: Any) -> None:
    png(project / "image/frames/shot-01-ff.png")
    seen: list[float] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append(p)

    r = await paid_client.call_tool("batch_generate", {"items": [
        {"label": "scene_a", "args": {"prompt": "a cliff at dawn", "aspect_ratio": "9:16"}},
        {"label": "refused", "args": {"prompt": "[sandbox:unsafe] something the filter refuses"}},
        {"label": "typo", "args": {"prompt": "x", "colour": "red"}},
        {"label": "wrong_type", "tool": "edit_image", "args": {"image": "image/frames/shot-01-ff.png", "num_images": "many"}},
        {"label": "poster", "args": {"prompt": "a poster", "model": "flux-2-flash", "output": "image/styles/poster.png"}},
        {"label": "clip", "tool": "generate_video", "args": {"prompt": "waves", "image": "image/frames/shot-01-ff.png",
                                                            "duration": 5}},
    ], "concurrency": 2}, progress_callback=on_progress)
    assert not r.is_error, r.content[0].text
    out = r.structured_content
    items = {i["label"]: i for i in out["items"]}
    assert [i["label"] for i in out["items"]] == ["scene_a", "refused", "typo", "wrong_type", "poster", "clip"]
    assert items["scene_a"]["status"] == "completed" and (project / items["scene_a"]["files"][0]).is_file()
    assert items["poster"]["files"] == ["image/styles/poster.png"] and items["poster"]["model"] == "flux-2-flash"
    assert items["clip"]["status"] == "completed" and items["clip"]["files"][0].endswith(".mp4")
    assert items["refused"]["status"] == "failed" and "content checker refused" in items["refused"]["error"]
    assert items["typo"]["status"] == "invalid" and "'colour'" in items["typo"]["error"] and "aspect_ratio" in items["typo"]["error"]
    assert items["typo"]["job_id"] is None
    assert items["wrong_type"]["status"] == "invalid" and "num_images" in items["wrong_type"]["error"]
    assert out["done"] and sandbox.submission_count() == 4  # the two bad items were never sent
    assert out["cost_usd"] == pytest.approx(sum(i["cost_usd"] or 0 for i in out["items"]), abs=1e-3) and out["cost_usd"] > 0
    assert seen and seen == sorted(seen)
    recent = (await ok(paid_client, "queue_status", {}))["recent"]
    assert {j["job_id"] for j in recent} == {i["job_id"] for i in out["items"] if i["job_id"]}


async def test_unfinished_items_come_back_with_job_ids_and_calling_again_pays_once(client: Client, project: Path,
                                                                                   sandbox: Any) -> None:
    items = [{"label": f"slow_{n}", "args": {"prompt": f"frame {n} [sandbox:slow=0.5]"}} for n in range(3)]
    first = await ok(client, "batch_generate", {"items": items, "concurrency": 3, "wait_s": 0.1})
    assert not first["done"] and all(i["job_id"] and i["status"] not in ("completed", "failed") for i in first["items"])
    assert "again" in first["next_step"]
    second = await ok(client, "batch_generate", {"items": items, "wait_s": 20})
    assert second["done"] and all(i["status"] == "completed" for i in second["items"])
    assert [i["job_id"] for i in second["items"]] == [i["job_id"] for i in first["items"]]
    assert sandbox.submission_count() == 3


async def test_concurrency_limits_jobs_in_flight(client: Client, sandbox: Any) -> None:
    items = [{"label": f"n{n}", "args": {"prompt": f"one at a time {n} [sandbox:slow=0.2]"}} for n in range(3)]
    out = await ok(client, "batch_generate", {"items": items, "concurrency": 1, "wait_s": 20})
    assert out["done"] and sandbox.submission_count() == 3
    subs = sorted(s.at for s in sandbox.submissions)
    assert subs[1] - subs[0] >= 0.2 and subs[2] - subs[1] >= 0.2  # each waited for the one before


async def test_labels_must_be_unique(client: Client, sandbox: Any) -> None:
    text = await refused(client, "batch_generate", {"items": [{"label": "a", "args": {"prompt": "x"}},
                                                              {"label": "a", "args": {"prompt": "y"}}]})
    assert "unique" in text and sandbox.submission_count() == 0


async def test_identical_items_are_refused_not_silently_collapsed(paid_client: Any, project: Any, sandbox: Any) -> None:

    same = {"prompt": "four takes of one thing"}
    out = await ok(paid_client, "batch_generate", {"items": [
        {"label": "a", "args": same}, {"label": "b", "args": same}, {"label": "c", "args": {**same, "seed": 2}}]})
    by = {i["label"]: i for i in out["items"]}
    assert by["a"]["status"] == "completed" and by["c"]["status"] == "completed"
    assert by["b"]["status"] == "invalid" and "identical to item 'a'" in by["b"]["error"]
    assert sandbox.submission_count() == 2 and out["cost_usd"] == pytest.approx(0.30)
