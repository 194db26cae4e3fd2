"""references/models*.md, generated from the catalog (CI fails when a file is stale).

One file per kind of model, each small enough to read in one go (models-image.md, models-flux.md,
models-edit.md, models-video.md, models-kling.md), and a short index, models.md, with one line per
model and the file it is in. `aivp models --markdown
references/` writes the set; `aivp models --check references/` compares it (`stale`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import catalog, effective_params, effective_pricing
from .pricing import price_text as pricing_text
from .schema import Endpoint, Model, Route
from .search import param_card, price_text, summary

INDEX = "models.md"
MARK = "<!-- Generated from server/aivp/catalog/models.json by `aivp models --markdown references/`."
HEADER = MARK + " Do not edit by hand. -->\n"
PRICES = ("Prices are the providers' list prices as recorded in the catalog; a typical call is one image at the "
          "default size or a clip of the default length (a clip whose length the model picks is counted at its "
          "longest). `search_models(model=...)` returns a model's card as JSON.")
EDIT_TASKS = ("edit", "i2i", "inpaint", "upscale")


@dataclass(frozen=True)
class Part:
    """One generated file: which models it holds and what it says about them."""

    key: str
    title: str
    about: str

    @property
    def file(self) -> str:
        return f"models-{self.key}.md"

    @property
    def uri(self) -> str:
        return f"aivp://references/models-{self.key}"


PARTS = (
    Part("image", "Image models", "text-to-image and reference-guided image models other than FLUX "
         "(`generate_image`; most also edit with `edit_image`): Nano Banana, GPT Image, Seedream, Ideogram, Recraft"),
    Part("flux", "FLUX image models", "the FLUX family (`generate_image`, `edit_image`): FLUX.2, FLUX.1 dev, "
         "schnell, 1.1 pro, general (IP-Adapter, LoRA), Kontext"),
    Part("edit", "Edit, restyle and upscale models", "models that only change an existing image (`edit_image`: "
         "object removal, character restyles, upscales)"),
    Part("video", "Video models", "every video model but Kling (`generate_video`, `run_storyboard`): Seedance "
         "(the default), Veo, Wan, Hailuo"),
    Part("kling", "Kling video models", "Kling O3, V3 and 2.x (`generate_video`, `multi_shot_video`, "
         "`run_storyboard`)"),
)


def part_of(m: Model) -> Part:
    by_key = {p.key: p for p in PARTS}
    if m.kind == "video":
        return by_key["kling" if m.id.startswith("kling-") else "video"]
    if not any("t2i" in e.tasks for e in m.endpoints):
        return by_key["edit"]
    return by_key["flux" if m.id.startswith("flux-") else "image"]


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _num(value: object) -> str:
    """A range bound as written: 4 rather than 4.0, nothing when open."""
    if value is None:
        return ""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _ordered() -> list[Model]:
    return sorted(catalog().models, key=lambda m: (m.kind, m.id))


def _summary_row(m: Model) -> str:
    if not m.active:
        return f"| `{m.id}` | retired | - | - | - | - |"
    s = summary(m)
    return (f"| `{m.id}` | {', '.join(s['tasks'])} | {_cell(price_text(m))} | ${s['typical_cost_usd']:.3f} | "
            f"{m.tier}, {m.consistency} | {', '.join(m.tags)} |")


def render_index() -> str:
    out = [HEADER, "# Models\n",
           "Every curated model, one line each; each kind's file has every model's endpoints, parameters, ranges "
           "and prices. Any other fal endpoint or Replicate model also runs, checked against its live schema and "
           f"priced from fal's pricing API (`search_models` lists them). {PRICES}\n",
           "| File | Resource | What it holds |", "|---|---|---|"]
    for part in PARTS:
        out.append(f"| `references/{part.file}` | `{part.uri}` | {part.about} |")
    for part in PARTS:
        out += ["", f"## {part.title}: `{part.uri}`", "",
                "| Model | Tasks | Price | Typical call | Tier, consistency | Tags |", "|---|---|---|---|---|---|"]
        out += [_summary_row(m) for m in _ordered() if part_of(m) is part]
    return "\n".join(out) + "\n"


def _also_edit(part: Part) -> list[str]:
    """For the edit file: the image models in other files that also do edit_image's operations."""
    if part.key != "edit":
        return []
    lines = ["", "Other models that do `edit_image` operations (their cards are in "
             f"`{PARTS[0].uri}` and `{PARTS[1].uri}`):", ""]
    for task in EDIT_TASKS:
        ids = [f"`{m.id}`" for m in _ordered() if m.active and part_of(m) is not part
               and any(task in e.tasks for e in m.endpoints)]
        if ids:
            lines.append(f"- {task}: {', '.join(ids)}")
    return lines


def render_part(part: Part) -> str:
    models = [m for m in _ordered() if part_of(m) is part]
    out = [HEADER, f"# {part.title}\n",
           f"Part of the model reference (`aivp://references/models` lists every model in one line): {part.about}. "
           f"{PRICES} In each parameter table, Endpoints names the endpoints (letters as listed above the table) "
           "that take the parameter; `required` marks where it must be given.\n",
           "| Model | Tasks | Price | Typical call | Tier, consistency | Tags |", "|---|---|---|---|---|---|",
           *(_summary_row(m) for m in models), *_also_edit(part)]
    for m in models:
        out += ["", *_model_section(m)]
    return "\n".join(out) + "\n"


def _model_section(m: Model) -> list[str]:
    out = [f"## {m.name} (`{m.id}`)", "", m.summary, ""]
    if m.retired is not None:
        nxt = ", ".join(f"{task}: `{mid}`" for task, mid in m.retired.successors.items())
        out.append(f"**Retired** since {m.retired.on}: {_cell(m.retired.reason)}. Calls are refused before "
                   f"anything is sent; successors: {nxt}.  ")
    if m.aliases:
        out.append(f"Aliases: {', '.join(f'`{a}`' for a in m.aliases)}.  ")
    out.append(f"Vendor {m.vendor}; tier {m.tier}; speed {m.speed}/3; quality {m.quality}/5; "
               f"consistency {m.consistency}.  ")
    limits = m.limits.model_dump(exclude_defaults=True)
    said = limits.pop("notes", "")
    if limits:
        out.append("Limits: " + "; ".join(f"{k} {v}" for k, v in limits.items()) + ".  ")
    if said:
        out.append(f"About the limits: {_cell(said)}  ")
    if m.notes:
        out.append(f"Notes: {_cell(m.notes)}  ")
    routes = [(e, r) for e in m.endpoints for r in e.routes]
    prices = [_cell(pricing_text(effective_pricing(m, e, r), with_note=True)) for e, r in routes]
    letters = [chr(ord("A") + i) for i in range(len(routes))]
    if len(set(prices)) == 1:
        out.append(f"Price: {prices[0]}  ")
    out += ["", "Endpoints:" if len(routes) > 1 else "Endpoint:"]
    for i, (e, r) in enumerate(routes):
        label = f"{letters[i]}: " if len(routes) > 1 else ""
        price = f"; {prices[i]}" if len(set(prices)) > 1 else ""
        out.append(f"- {label}{', '.join(e.tasks)}: `{r.endpoint}` ({r.provider}, output {e.output}{price})")
    out += ["", *_param_table(m, routes, letters)]
    if m.source:
        out += ["", f"Source: {_cell(m.source)}"]
    return out


def _param_table(m: Model, routes: list[tuple[Endpoint, Route]], letters: list[str]) -> list[str]:
    """One row per distinct parameter (same name, type, role, default and values), naming its endpoints."""
    rows: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    for letter, (e, r) in zip(letters, routes, strict=True):
        for name, p in effective_params(m, e, r).items():
            c = param_card(name, p)
            allowed = ""
            if "values" in c:
                allowed = ", ".join(str(v) for v in c["values"])
            elif "min" in c or "max" in c:
                allowed = f"{_num(c.get('min'))}..{_num(c.get('max'))}"
            elif "presets" in c:
                allowed = ", ".join(c["presets"]) + (", WxH" if p.custom_size else "")
            if "max_items" in c:
                allowed = (allowed + f" up to {c['max_items']} items").strip()
            key: tuple[str, ...] = (f"`{name}`", str(p.type), str(p.role or ""), _cell(p.default) if p.default is not None else "", _cell(allowed))
            where, required = rows.setdefault(key, ([], []))
            where.append(letter)
            if p.required:
                required.append(letter)
    many = len(routes) > 1
    head = ["| Parameter | Type | Role | Default | Allowed |" + (" Endpoints |" if many else " Required |"),
            "|---|---|---|---|---|---|"]
    lines = []
    for key, (where, required) in rows.items():
        if not many:
            lines.append("| " + " | ".join(key) + f" | {'yes' if required else ''} |")
            continue
        said = "all" if len(where) == len(routes) else ", ".join(where)
        if required:
            said += "; required" if required == where else f"; required on {', '.join(required)}"
        lines.append("| " + " | ".join(key) + f" | {said} |")
    return head + lines


def render_all() -> dict[str, str]:
    """Every generated file, by name (in references/)."""
    return {INDEX: render_index(), **{part.file: render_part(part) for part in PARTS}}


def folder_of(path: str | Path) -> Path:
    """The folder of the set: the path itself, or the folder of a file named in it (references/models.md)."""
    p = Path(path)
    return p.parent if p.suffix == ".md" else p


def stale(folder: Path) -> list[str]:
    """What differs between `folder` and the generated set: missing or changed files, and leftover ones."""
    problems = []
    wanted = render_all()
    for name, text in wanted.items():
        path = folder / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current is None:
            problems.append(f"{path} is missing")
        elif current != text:
            problems.append(f"{path} is stale")
    for path in sorted(folder.glob("models*.md")):
        if path.name not in wanted and path.read_text(encoding="utf-8").startswith(MARK):
            problems.append(f"{path} is a generated file the catalog no longer makes: delete it")
    return problems
