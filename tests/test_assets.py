"""Assets, @mentions, aivp.toml and model choice, through the MCP tools against the sandbox."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from aivp.app import build_server

from .conftest import make_settings, ok, png, refused

pytestmark = pytest.mark.anyio

MARA = "Woman in her sixties, silver braid, yellow oilskin raincoat"
THEO = "Young man, red beanie, navy pea coat"
ROOM = "A lighthouse lantern room at night, rain on the glass"


async def cast(client: Client, project: Path) -> None:
    """Mara (with a night variation), Theo and the lantern room, each with a distinct image."""
    png(project / "in/mara.png", color="gold")
    png(project / "in/mara-night.png", color="black")
    png(project / "in/theo.png", color="red")
    png(project / "in/room.png", color="navy")
    await ok(client, "register_asset", {"kind": "character", "name": "Mara", "description": MARA,
                                        "images": {"front": "in/mara.png"}})
    await ok(client, "register_asset", {"kind": "character", "name": "Mara", "variation": "night",
                                        "variation_description": "dark wool coat, lantern in hand",
                                        "images": {"front": "in/mara-night.png"}})
    await ok(client, "register_asset", {"kind": "character", "name": "Theo", "description": THEO,
                                        "images": {"front": "in/theo.png"}})
    await ok(client, "register_asset", {"kind": "location", "name": "Lantern Room", "description": ROOM,
                                        "images": {"plate": "in/room.png"}})


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ref_paths(request: dict[str, Any], field: str = "image_urls") -> list[str]:
    return [r["path"] for r in request[field]]


# ---------------------------------------------------------------- assets are files

async def test_register_list_and_survive_a_restart(client: Client, project: Path, sandbox: Any, settings: Any) -> None:
    await cast(client, project)
    md = (project / "script/characters/mara.md").read_text()
    assert MARA in md and "| night | dark wool coat, lantern in hand |" in md and "| default |  | yes |" in md
    assert (project / "image/characters/mara-front.png").is_file() and (project / "image/characters/mara-night-front.png").is_file()
    assert (project / "image/locations/lantern-room.png").is_file()
    assert sandbox.submission_count() == 0

    async with Client(build_server(settings)) as again:  # a new server on the same project
        listing = await ok(again, "list_assets", {})
        by_name = {a["name"]: a for a in listing["assets"]}
        assert set(by_name) == {"Mara", "Theo", "Lantern Room"}
        mara = by_name["Mara"]
        assert mara["mention"] == "@mara" and mara["description"] == MARA
        variations = {v["name"]: v for v in mara["variations"]}
        assert variations["default"]["default"] and not variations["night"]["default"]
        assert variations["night"]["images"] == {"front": "image/characters/mara-night-front.png"}
        assert variations["default"]["missing"] == ["side", "back"]
        assert by_name["Lantern Room"]["mention"] == "@lantern-room"
        only = await ok(again, "list_assets", {"kind": "location"})
        assert [a["name"] for a in only["assets"]] == ["Lantern Room"]
        est = await ok(again, "generate_image", {"prompt": "@Mara at the window", "dry_run": True})
        assert ref_paths(est["request"]) == ["image/characters/mara-front.png"]
        assert est["request"]["prompt"].startswith("Mara at the window") and MARA in est["request"]["prompt"]


async def test_register_copies_as_png_and_never_replaces_silently(client: Client, project: Path) -> None:
    from PIL import Image

    (project / "in").mkdir()
    Image.new("RGB", (64, 96), "green").save(project / "in/ada.jpg", "JPEG")
    png(project / "in/other.png", color="white")
    card = await ok(client, "register_asset", {"kind": "character", "name": "Ada Byron", "description": "A woman",
                                               "images": {"front": "in/ada.jpg"}})
    assert card["placed"] == {"front": "image/characters/ada-byron-front.png"} and card["asset"]["mention"] == "@ada-byron"
    with Image.open(project / "image/characters/ada-byron-front.png") as im:
        assert im.format == "PNG" and im.size == (64, 96)
    again = await ok(client, "register_asset", {"kind": "character", "name": "Ada Byron", "images": {"front": "in/ada.jpg"}})
    assert again["placed"]  # the same image again is fine
    text = await refused(client, "register_asset", {"kind": "character", "name": "Ada Byron", "images": {"front": "in/other.png"}})
    assert "overwrite=true" in text and "ada-byron-front.png" in text
    await ok(client, "register_asset", {"kind": "character", "name": "Ada Byron", "images": {"front": "in/other.png"},
                                        "overwrite": True})
    assert sha(project / "image/characters/ada-byron-front.png") == sha(project / "in/other.png")
    text = await refused(client, "register_asset", {"kind": "location", "name": "Ada Byron"})
    assert "already a character" in text
    text = await refused(client, "register_asset", {"kind": "character", "name": "Ada Byron", "make_default": True})
    assert "need variation" in text
    text = await refused(client, "register_asset", {"kind": "location", "name": "Cliff", "images": {"front": "in/other.png"}})
    assert "plate" in text and not (project / "script/scenes").exists()


@pytest.mark.parametrize("bad", ["../outside.png", "ABS", "in/link.png"])
async def test_register_asset_images_outside_the_project_are_refused(client: Client, project: Path, bad: str) -> None:
    outside = png(project.parent / "outside.png")
    (project / "in").mkdir()
    (project / "in/link.png").symlink_to(outside)
    before = sorted(p.name for p in project.parent.iterdir())
    text = await refused(client, "register_asset", {"kind": "character", "name": "Eve", "description": "x",
                                                    "images": {"front": str(outside) if bad == "ABS" else bad}})
    assert "outside the project" in text
    assert not (project / "script").exists() and not (project / "image").exists()
    assert sorted(p.name for p in project.parent.iterdir()) == before


# ---------------------------------------------------------------- sheets

async def test_character_sheet_front_first_then_views_from_it(client: Client, project: Path, sandbox: Any) -> None:
    sheet = await ok(client, "make_asset_sheet", {"name": "Nell", "description": "Girl of ten, green scarf", "turnaround": True})
    views = {v["label"]: v for v in sheet["views"]}
    assert [v["label"] for v in sheet["views"]] == ["front", "side", "back", "turnaround"]
    assert all(v["status"] == "completed" for v in views.values()) and sheet["done"]
    assert views["front"]["files"] == ["image/characters/nell-front.png"]
    assert views["turnaround"]["files"] == ["image/characters/nell-turnaround.png"]
    assert (project / "script/characters/nell.md").read_text().count("Girl of ten, green scarf") == 1
    subs = sandbox.submissions
    assert len(subs) == 4 and subs[0].endpoint == "fal-ai/nano-banana-pro"
    assert subs[0].payload["aspect_ratio"] == "3:4" and "front view" in subs[0].payload["prompt"]
    assert "plain light-grey background" in subs[0].payload["prompt"] and "Girl of ten" in subs[0].payload["prompt"]
    for s in subs[1:]:  # the other views are edits of the front
        assert s.endpoint == "fal-ai/nano-banana-pro/edit" and len(s.payload["image_urls"]) == 1
        assert s.at >= subs[0].at
    async with httpx.AsyncClient() as http:
        got = (await http.get(subs[1].payload["image_urls"][0])).content
    assert hashlib.sha256(got).hexdigest() == sha(project / "image/characters/nell-front.png")
    assert next(s for s in subs if "turnaround" in s.payload["prompt"]).payload["aspect_ratio"] == "16:9"
    again = await ok(client, "make_asset_sheet", {"name": "@Nell", "turnaround": True})
    assert {v["status"] for v in again["views"]} == {"exists"} and sandbox.submission_count() == 4
    card = again["asset"]["variations"][0]
    assert set(card["images"]) == {"front", "side", "back", "turnaround"} and card["missing"] == []


async def test_sheet_past_wait_goes_on_and_calling_again_pays_once(client: Client, project: Path, sandbox: Any) -> None:
    first = await ok(client, "make_asset_sheet", {"name": "Slow Sam", "description": "A tall man [sandbox:slow=0.6]",
                                                  "views": ["front", "side"], "wait_s": 0.1})
    assert not first["done"] and first["views"][0]["job_id"] and first["views"][1]["status"] == "waiting"
    assert "again" in first["next_step"]
    second = await ok(client, "make_asset_sheet", {"name": "Slow Sam", "views": ["front", "side"], "wait_s": 20})
    assert second["done"] and [v["status"] for v in second["views"]][1] == "completed"
    assert sandbox.submission_count() == 2  # the front was joined, the side made once
    assert (project / "image/characters/slow-sam-side.png").is_file()


async def test_location_plate_and_variation_sheet(client: Client, project: Path, sandbox: Any) -> None:
    plate = await ok(client, "make_asset_sheet", {"name": "Harbour", "kind": "location", "description": "A stone harbour at dawn"})
    assert plate["views"][0]["files"] == ["image/locations/harbour.png"]
    sub = sandbox.submissions[-1]
    assert sub.endpoint == "fal-ai/nano-banana-pro" and sub.payload["aspect_ratio"] == "16:9"
    assert "no people" in sub.payload["prompt"] and "stone harbour" in sub.payload["prompt"]
    await ok(client, "register_asset", {"kind": "location", "name": "Harbour", "variation": "storm",
                                        "variation_description": "in a storm"})
    storm = await ok(client, "make_asset_sheet", {"name": "harbour", "variation": "storm"})
    assert storm["views"][0]["files"] == ["image/locations/harbour-storm.png"]
    assert sandbox.submissions[-1].endpoint.endswith("/edit")  # made from the default plate, same place
    text = await refused(client, "make_asset_sheet", {"name": "Harbour", "variation": "fog"})
    assert "no variation 'fog'" in text and "storm" in text
    text = await refused(client, "make_asset_sheet", {"name": "Nobody"})
    assert "description" in text


async def test_sheet_dry_run_spends_and_writes_nothing(client: Client, project: Path, sandbox: Any) -> None:
    est = await ok(client, "make_asset_sheet", {"name": "Ivo", "description": "An old sailor", "dry_run": True})
    assert [v["status"] for v in est["views"]] == ["estimate"] * 3 and est["estimate_usd"] == pytest.approx(0.45)
    assert sandbox.stats()["requests"] == 0 and not (project / "script").exists() and not (project / "image").exists()
    text = await refused(client, "make_asset_sheet", {"name": "Ivo", "description": "An old sailor", "model": "nope-9"})
    assert "Unknown model" in text and not (project / "script").exists() and sandbox.stats()["requests"] == 0


# ---------------------------------------------------------------- @mentions: order, caps, variations

async def test_reference_order_in_the_submission_and_a_model_that_takes_them(client: Client, project: Path, sandbox: Any) -> None:
    await cast(client, project)
    png(project / "refs/style.png", color="purple")
    png(project / "refs/prop.png", color="orange")
    args = {"prompt": "@Theo hands @Mara the lantern in @lantern-room", "references": ["refs/style.png", "refs/prop.png"]}
    r = await client.call_tool("generate_image", args)
    assert not r.is_error, r.content[0].text
    job = r.structured_content
    assert job["model"] != "nano-banana-pro" and "takes the 5 reference images" in r.content[0].text
    expected = ["image/characters/theo-front.png", "image/characters/mara-front.png", "image/locations/lantern-room.png",
                "refs/style.png", "refs/prop.png"]
    urls = sandbox.submissions[-1].payload["image_urls"]
    async with httpx.AsyncClient() as http:
        sent = [hashlib.sha256((await http.get(u)).content).hexdigest() for u in urls]
    assert sent == [sha(project / p) for p in expected]
    prompt = sandbox.submissions[-1].payload["prompt"]
    assert prompt.startswith("Theo hands Mara the lantern in Lantern Room")
    assert prompt.index(THEO) < prompt.index(MARA) < prompt.index(ROOM)

    capped = await ok(client, "generate_image", {**args, "model": "nano-banana-pro", "dry_run": True})
    assert ref_paths(capped["request"]) == expected[:4]
    assert any("takes 4 reference image(s); dropped refs/prop.png" in w for w in capped["warnings"])


async def test_variation_per_call_keeps_the_default(client: Client, project: Path, sandbox: Any) -> None:
    await cast(client, project)
    by_mention = await ok(client, "generate_image", {"prompt": "@Mara:night on the stairs", "dry_run": True})
    by_arg = await ok(client, "generate_image", {"prompt": "@Mara on the stairs", "variations": {"Mara": "night"}, "dry_run": True})
    for est in (by_mention, by_arg):
        assert ref_paths(est["request"]) == ["image/characters/mara-night-front.png"]
        assert "night: dark wool coat, lantern in hand" in est["request"]["prompt"]
    plain = await ok(client, "generate_image", {"prompt": "@Mara on the stairs", "dry_run": True})
    assert ref_paths(plain["request"]) == ["image/characters/mara-front.png"]
    md = (project / "script/characters/mara.md").read_text()
    assert "| default |  | yes |" in md and "| night | dark wool coat, lantern in hand |  |" in md
    text = await refused(client, "generate_image", {"prompt": "@Mara:winter", "dry_run": True})
    assert "no variation 'winter'" in text and "night" in text


async def test_unknown_mention_lists_the_known_ones_and_sends_nothing(client: Client, project: Path, sandbox: Any) -> None:
    await cast(client, project)
    text = await refused(client, "generate_image", {"prompt": "@Marta by the sea"})
    assert "@Marta" in text and "@mara" in text and "@theo" in text and "@lantern-room" in text
    assert sandbox.submission_count() == 0 and (await ok(client, "queue_status", {}))["recent"] == []


# ---------------------------------------------------------------- aivp.toml and model choice

async def test_model_choice_rules_each_say_why(client: Client, project: Path, sandbox: Any) -> None:
    async def choose(args: dict[str, Any]) -> tuple[str, str]:
        r = await client.call_tool("generate_image", {**args, "dry_run": True})
        assert not r.is_error, r.content[0].text
        return r.structured_content["model"], r.content[0].text

    model, why = await choose({"prompt": 'A poster that reads "GRAND OPENING"'})
    assert model == "ideogram-v3" and "text to render" in why
    model, why = await choose({"prompt": "A quiet harbour"})
    assert model == "nano-banana-pro" and "default" in why
    (project / "aivp.toml").write_text('consistency = "strong"\ntier = "standard"\n')
    model, why = await choose({"prompt": "A quiet harbour"})
    # Seedream 5.0 Lite ($0.035) joined the catalog in December 2026 and undercuts Seedream 4.5 ($0.04)
    assert model == "seedream-5-lite" and "cheapest" in why and "consistency strong+" in why and "tier standard" in why
    (project / "aivp.toml").write_text('tier = "fast"\n[models]\nt2i = "flux-2-pro"\n')
    model, why = await choose({"prompt": "A quiet harbour"})
    assert model == "flux-2-pro" and "aivp.toml" in why
    model, why = await choose({"prompt": "A quiet harbour", "model": "flux-2-flash"})
    assert model == "flux-2-flash" and "as requested" in why
    assert sandbox.stats()["requests"] == 0


async def test_project_settings_reach_the_payload_and_a_call_overrides_them(client: Client, project: Path, sandbox: Any) -> None:
    (project / "aivp.toml").write_text('aspect_ratio = "9:16"\nnegative_prompt = "blurry, extra fingers"\n')
    est = await ok(client, "generate_image", {"prompt": "A quiet harbour", "model": "ideogram-v3", "dry_run": True})
    assert est["request"]["negative_prompt"] == "blurry, extra fingers"
    assert est["request"]["image_size"] == "portrait_16_9"  # ideogram spells 9:16 as a size preset
    own = await ok(client, "generate_image", {"prompt": "A quiet harbour", "model": "ideogram-v3", "aspect_ratio": "1:1",
                                              "negative_prompt": "text", "dry_run": True})
    assert own["request"]["negative_prompt"] == "text" and own["request"]["image_size"] == "square_hd"
    job = await ok(client, "generate_image", {"prompt": "A quiet harbour"})
    assert sandbox.submissions[-1].payload["aspect_ratio"] == "9:16" and job["status"] == "completed"
    assert "negative_prompt" not in sandbox.submissions[-1].payload  # nano-banana-pro has none: left out quietly


@pytest.mark.parametrize(("toml", "named"), [('tier = "cheap"\n', "tier"), ('[models]\nt2i = "nope-9"\n', "t2i"),
                                             ('aspect = "16:9"\n', "aspect"), ("budget_usd = -1\n", "budget_usd")])
async def test_a_bad_aivp_toml_is_a_clear_error(client: Client, project: Path, sandbox: Any, toml: str, named: str) -> None:
    (project / "aivp.toml").write_text(toml)
    text = await refused(client, "generate_image", {"prompt": "x"})
    assert "aivp.toml" in text and named in text
    assert sandbox.submission_count() == 0


async def test_budget_from_aivp_toml(project: Path, sandbox: Any) -> None:
    (project / "aivp.toml").write_text("budget_usd = 0.1\n")
    async with Client(build_server(make_settings(project, sandbox, sandboxes=()))) as c:  # a paid provider
        text = await refused(c, "generate_image", {"prompt": "too dear"})
        assert "budget" in text and sandbox.submission_count() == 0
