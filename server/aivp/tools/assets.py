"""register_asset, make_asset_sheet, list_assets: characters and locations an agent names with @.

An asset is files (see `aivp.assets`): a Markdown file under script/ and images at the convention
paths of each variation. These tools only write those files, so what they make survives restarts and
hand edits, and every other tool sees it at once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
import re
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..assets import KINDS, VIEWS, Asset, Variation, load_assets, save_asset, unique
from ..errors import InvalidParameterError
from ..project import Project, slug as make_slug
from ..domain.batch import Item, ItemResult, Run, result_of, start_and_follow, unfinished
from ..domain.files import png_bytes
from ..domain.prepare import Call, prepare
from ..domain.studio import Studio
from .common import boundary, progress_reporter, state_of
from .consent import ConfirmSpend, consent, of_items
from .generate import PAID, DryRun, Model, WaitS

SHEET_VIEWS = ("front", "side", "back")
LOOK = {"front": "front view", "side": "side view, profile", "back": "back view"}
STUDIO = "neutral standing pose, plain light-grey background, even studio lighting"
NAME = r"^[^|@\r\n]{1,60}$"
EDITS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class VariationCard(BaseModel):
    name: str
    description: str = ""
    default: bool
    images: dict[str, str] = Field(description="view (front/side/back/turnaround, or plate) -> project path, for images that exist")
    missing: list[str] = Field(description="Standard views not made yet (make_asset_sheet makes them)")


class AssetCard(BaseModel):
    kind: str
    name: str
    mention: str = Field(description="Write this in a prompt (add :variation for another look)")
    file: str
    description: str | None
    variations: list[VariationCard]


class AssetList(BaseModel):
    assets: list[AssetCard]


class Registered(BaseModel):
    asset: AssetCard
    placed: dict[str, str] = Field(description="view -> where the given image now is")
    notes: list[str] = []


class SheetResult(BaseModel):
    asset: AssetCard
    views: list[ItemResult]
    done: bool
    estimate_usd: float
    next_step: str


def card(project: Project, asset: Asset) -> AssetCard:
    variations = list(asset.variations)
    if not any(v.default for v in variations):
        variations.insert(0, Variation("default", "", True))
    cards = []
    for v in variations:
        if asset.kind == "character":
            images = {view: p for view in VIEWS if project.exists(p := asset.image(v, view))}
            missing = [view for view in SHEET_VIEWS if view not in images]
        else:
            plate = asset.image(v)
            images = {"plate": plate} if project.exists(plate) else {}
            missing = [] if images else ["plate"]
        cards.append(VariationCard(name=v.name, description=v.description, default=v.default, images=images,
                                   missing=missing))
    return AssetCard(kind=asset.kind, name=asset.name, mention=f"@{asset.slug}", file=asset.file,
                     description=asset.description, variations=cards)


def find(project: Project, name: str) -> Asset | None:
    index = load_assets(project)
    name = name.strip().lstrip("@")
    return index.get(re.sub(r"\s+", "", name.lower())) or index.get(make_slug(name))


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Register asset", annotations=EDITS)
    @boundary
    async def register_asset(
        kind: Annotated[Literal["character", "location"], Field(description="character or location.")],
        name: Annotated[str, Field(pattern=NAME, description="e.g. Lantern Room, then @lantern-room.")],
        ctx: Context[Any, Any],
        description: Annotated[str | None, Field(description="Anchor phrase (looks, outfit) or scene prompt.")] = None,
        variation: Annotated[str | None, Field(pattern=r"^[\w-]{1,40}$", description="e.g. night, used as @Mara:night.")] = None,
        variation_description: Annotated[str | None, Field(pattern=r"^[^|\r\n]*$", description="What it changes.")] = None,
        make_default: Annotated[bool, Field(description="@Name uses variation by default.")] = False,
        images: Annotated[dict[str, str] | None, Field(description="{view: project path}; views front/side/back/turnaround, or plate.")] = None,
        overwrite: Annotated[bool, Field(description="Replace a different image there.")] = False,
    ) -> Annotated[CallToolResult, Registered]:
        """Create or update a character or location that prompts name as @Name: its description in
        script/characters/ or script/scenes/ (hand edits kept), and given images copied to the convention paths.
        Generates nothing; make_asset_sheet does."""
        project = state_of(ctx).project
        if variation is None and (make_default or variation_description):
            raise InvalidParameterError("make_default and variation_description need variation, the variation's name.")
        allowed = ("plate",) if kind == "location" else VIEWS
        bad = sorted(set(images or {}) - set(allowed))
        if bad:
            raise InvalidParameterError(f"A {kind} takes images for {', '.join(allowed)}, not {', '.join(bad)}.")
        data = {view: png_bytes(project, project.input_path(raw)) for view, raw in (images or {}).items()}
        existing = find(project, name)
        if existing is not None and existing.kind != kind:
            raise InvalidParameterError(f"{name!r} is already a {existing.kind} ({existing.file}); use another name.")
        planned = existing or Asset(kind, name.strip(), make_slug(name, fallback=kind), "", description)
        look = Variation(variation) if variation else planned.default
        targets = {view: planned.image(look, view) for view in data}
        for view, rel in targets.items():
            path = project.output_path(rel)
            if path.is_file() and path.read_bytes() != data[view] and not overwrite:
                raise InvalidParameterError(f"{rel} already holds a different image; pass overwrite=true to replace it "
                                            "(nothing was changed).")
        notes = []
        if existing is None or description is not None or variation is not None:
            asset = save_asset(project, kind, name.strip(), description=description, variation=variation,
                               variation_description=variation_description, make_default=make_default)
        else:
            asset = existing
        if existing is None and not description:
            notes.append("No description yet: prompts get only the name. Add one with register_asset(description=...).")
        placed = {view: project.write_bytes(asset.image(asset.variation(variation) if variation else asset.default, view),
                                   data[view]) for view in data}
        result = Registered(asset=card(project, asset), placed=placed, notes=notes)
        verb = "Registered" if existing is None else "Updated"
        text = f"{verb} {kind} {asset.name} ({asset.file}); mention it as @{asset.slug}."
        if placed:
            text += " Images: " + ", ".join(placed.values()) + "."
        text += " ".join(["", *notes])
        return CallToolResult(content=[TextContent(text=text)], structured_content=result.model_dump(mode="json"))

    @mcp.tool(title="Make asset sheet", annotations=PAID)
    @boundary
    async def make_asset_sheet(
        name: Annotated[str, Field(pattern=r"^@?[^|@\r\n]{1,60}$", description="Registered, or new with description.")],
        ctx: Context[Any, Any],
        kind: Annotated[Literal["character", "location"] | None, Field(description="New asset (default character).")] = None,
        description: Annotated[str | None, Field(description="Needed for a new asset; replaces a stored one.")] = None,
        variation: Annotated[str | None, Field(description="Default: the default look.")] = None,
        views: Annotated[list[Literal["front", "side", "back", "turnaround", "plate"]] | None, Field(description="Default front, side, back (plate).")] = None,
        turnaround: Annotated[bool, Field(description="Also a 16:9 turnaround sheet.")] = False,
        model: Model = None,
        fresh: Annotated[bool, Field(description="Make existing views again (pays).")] = False,
        wait_s: WaitS = None,
        dry_run: DryRun = False,
        confirm_spend_usd: ConfirmSpend = None,
    ) -> Annotated[CallToolResult, SheetResult] | InputRequiredResult:
        """Generate a character's sheet (front from the description, then side and back as edits of it, so face
        and outfit match) or a location's empty 16:9 plate. Existing views are skipped; calling again never pays twice."""
        state = state_of(ctx)
        asset, write = _sheet_asset(state, name, kind, description)
        look = asset.variation(variation)
        items = _sheet_items(state, asset, look, views, turnaround, model, fresh)
        if dry_run:
            for stage in items:
                for item in stage:
                    _estimate(item)
            results = [result_of(state, i) for s in items for i in s]
            est = sum(r.estimate_usd or 0 for r in results)
            nxt = "Nothing was sent or charged. Call again without dry_run to make it."
            out = SheetResult(asset=card(state.project, asset), views=results, done=True, estimate_usd=round(est, 4),
                              next_step=nxt)
            text = f"Dry run: {asset.name} sheet, {len(results)} view(s), about ${est:.3f}. {nxt}"
            return CallToolResult(content=[TextContent(text=text)], structured_content=out.model_dump(mode="json"))
        _check_all(items)
        spend = of_items((item for stage in items for item in stage), f"the {asset.name} ({look.name}) sheet")
        if (ask := await consent(ctx, state, spend, confirm_spend_usd)) is not None:
            return ask
        note = ""
        if write:
            new = find(state.project, asset.name) is None
            asset = save_asset(state.project, asset.kind, asset.name, description=asset.description)
            note = f"{'Created' if new else 'Stored the new description in'} {asset.file}. "
        run = Run(items)
        await start_and_follow(state, run, wait_s, progress_reporter(ctx))
        results = [result_of(state, i) for i in run.items]
        going = unfinished(results)
        failed = [r for r in results if r.status in ("failed", "invalid", "blocked", "canceled", "unknown")]
        if going:
            nxt = ("Still going in the server (the other views start when the front is done). Call make_asset_sheet "
                   "again with the same arguments in ~20 s (nothing is paid twice), or queue_status(job_id).")
        elif failed:
            nxt = f"{failed[0].label} failed: {failed[0].error}. Fix it and call again; finished views are kept."
        else:
            nxt = f"Done. Prompts that say @{asset.slug}{'' if look.default else ':' + look.name} now attach these images."
        out = SheetResult(asset=card(state.project, asset), views=results, done=not going,
                          estimate_usd=round(sum(r.estimate_usd or 0 for r in results if r.job_id), 4), next_step=nxt)
        summary = ", ".join(f"{r.label} {r.status}" for r in results)
        text = f"{asset.name} ({look.name}) sheet: {summary}. {note}{nxt}"
        return CallToolResult(content=[TextContent(text=text)], structured_content=out.model_dump(mode="json"))

    @mcp.tool(title="List assets", annotations=READ)
    @boundary
    async def list_assets(
        ctx: Context[Any, Any],
        kind: Annotated[Literal["character", "location"] | None, Field()] = None,
    ) -> Annotated[CallToolResult, AssetList]:
        """Characters and locations: description, variations, which views exist, and the @mention to use."""
        project = state_of(ctx).project
        found = sorted((a for a in unique(load_assets(project)) if kind in (None, a.kind)), key=lambda a: (a.kind, a.name))
        out = AssetList(assets=[card(project, a) for a in found])
        if not found:
            text = "No assets yet. Add one with register_asset, or make_asset_sheet(name, description=...)."
        else:
            text = "; ".join(f"{c.kind} {c.name} ({c.mention}; " + ", ".join(
                f"{v.name}{'*' if v.default else ''}: {'/'.join(v.images) or 'no images'}" for v in c.variations) + ")"
                for c in out.assets)
        return CallToolResult(content=[TextContent(text=text)], structured_content=out.model_dump(mode="json"))


# ---------------------------------------------------------------- the sheet

def _sheet_asset(state: Studio, name: str, kind: str | None, description: str | None) -> tuple[Asset, bool]:
    """The asset to draw, and whether its Markdown must be written (new, or a new description) once the
    views are checked: a refused call leaves no file behind."""
    project = state.project
    name = name.strip().lstrip("@")
    asset = find(project, name)
    if asset is not None:
        if kind and kind != asset.kind:
            raise InvalidParameterError(f"{asset.name} is a {asset.kind}, not a {kind}.")
        if description and description.strip() != (asset.description or "").strip():
            return Asset(asset.kind, asset.name, asset.slug, asset.file, description.strip(), asset.variations), True
        return asset, False
    known = ", ".join(sorted(f"@{a.slug}" for a in unique(load_assets(project)))) or "none yet"
    if not description:
        raise InvalidParameterError(f"{name!r} is not a registered asset (known: {known}). Pass description (and kind) "
                                    "to create it, or register_asset first.")
    kind = kind or "character"
    slug = make_slug(name, fallback=kind)
    return Asset(kind, name.strip(), slug, f"{KINDS[kind][0]}/{slug}.md", description.strip()), True


def _sheet_items(state: Studio, asset: Asset, look: Variation, views: Sequence[str] | None, turnaround: bool,
                 model: str | None, fresh: bool) -> list[list[Item]]:
    """Stages of items: the front (or plate) first, then the views made from it."""
    project = state.project
    if asset.kind == "location":
        wanted = list(dict.fromkeys(views or ["plate"]))
        if wanted != ["plate"]:
            raise InvalidParameterError("A location has one view, plate.")
    else:
        wanted = list(dict.fromkeys([*(views or SHEET_VIEWS), *(["turnaround"] if turnaround else [])]))
        if "plate" in wanted:
            raise InvalidParameterError("plate is a location's view; a character has front, side, back, turnaround.")
    first = "plate" if asset.kind == "location" else "front"
    target = {v: asset.image(look, v) for v in [*wanted, first]}
    todo = [v for v in wanted if fresh or not project.exists(target[v])]
    if todo and first not in todo and not project.exists(target[first]):
        todo.insert(0, first)  # the other views are made from it
        wanted.insert(0, first)
    # the views still to make are inputs to be for the views made from them (a dry run prices those too)
    planned = frozenset(target[v] for v in todo)
    base = asset.default if not look.default else None
    base_ref = asset.image(base, first) if base is not None and project.exists(asset.image(base, first)) else None
    stages: list[list[Item]] = [[], []]
    for view in wanted:
        stage = stages[0] if view == first else stages[1]
        if view not in todo:
            stage.append(Item(view, status="exists", files=[target[view]], finished=True))
            continue
        refs = ([base_ref] if base_ref else []) if view == first else [target[first]]
        call = Call("make_asset_sheet", "image", "edit" if refs else "t2i", model,
                    {"prompt": _prompt(asset, look, view, bool(refs)), "references": refs or None,
                     "aspect_ratio": "16:9" if view in ("plate", "turnaround") else "3:4"},
                    output=target[view], overwrite=fresh, fresh=fresh)
        stage.append(Item(view, make=functools.partial(prepare, state, call, planned=planned)))
    return [s for s in stages if s]


def _prompt(asset: Asset, look: Variation, view: str, from_ref: bool) -> str:
    text = asset.text(look)
    if view == "plate":
        lead = f"The same place as in the reference image, {look.description or look.name}. " if from_ref else ""
        return f"{lead}{text}\n\nAn empty location plate: no people, no characters, no text; a wide establishing view."
    if view == "turnaround":
        return (f"Character turnaround sheet of {asset.name}, the same character as in the reference image: full body "
                f"seen from the front, three-quarter, side and back, side by side at the same scale, {STUDIO}. {text}")
    sheet = f"Character reference sheet of {asset.name}: full body, {LOOK[view]}, {STUDIO}. {text}"
    if view == "front":
        return f"The same character as in the reference image, now {look.description or look.name}. {sheet}" if from_ref else sheet
    return f"The same character as in the reference image, {LOOK[view]}. {sheet}"


def _estimate(item: Item) -> None:
    if item.make is None:
        return
    req, _ = item.make()
    item.status, item.model, item.estimate_usd = "estimate", req.built.model.id, round(req.estimate.usd, 4)


def _check_all(stages: list[list[Item]]) -> None:
    """Every view is checked (model, values, inputs, key) before the first one is paid for."""
    for stage in stages:
        for item in stage:
            if item.make is not None:
                item.make()
