"""Characters and locations as project assets, kept in files a person can read and edit.

A character is `script/characters/<slug>.md` (its `## Prompt Anchor Phrase` is the description put
into prompts) with sheets `image/characters/<slug>-<view>.png`; a location is `script/scenes/<slug>.md`
(its `## Scene Prompt`) with a plate `image/locations/<slug>.png`. Variations (an outfit, a time of
day) are rows of a `## Variations` table in the same Markdown file; a variation's images carry its
name: `image/characters/<slug>-<variation>-<view>.png`, `image/locations/<slug>-<variation>.png`.
One variation is the default. Nothing lives in a hidden database, so assets survive restarts,
copies and hand edits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import layout
from .errors import InputError, InvalidParameterError
from .project import Project, slug as make_slug

VIEWS = ("front", "side", "back", "turnaround")
KINDS = {"character": (layout.SCRIPT_CHARACTERS, layout.CHARACTERS, "Character", "Prompt Anchor Phrase"),
         "location": (layout.SCRIPT_SCENES, layout.LOCATIONS, "Scene", "Scene Prompt")}
VARIATIONS_HEADER = ("Variation", "Description", "Default")


@dataclass(frozen=True)
class Variation:
    name: str  # "default" for the base look
    description: str = ""  # what changes: "dark wool coat, lantern in hand", "at night, rain"
    default: bool = False


@dataclass
class Asset:
    kind: str  # character | location
    name: str
    slug: str
    file: str  # the Markdown file, project-relative
    description: str | None  # anchor phrase / scene prompt
    variations: list[Variation] = field(default_factory=list)

    @property
    def default(self) -> Variation:
        return next((v for v in self.variations if v.default), None) or Variation("default", "", True)

    def variation(self, name: str | None) -> Variation:
        if name is None or name.lower() in ("", "default") and not any(v.name.lower() == "default" for v in self.variations):
            return self.default
        for v in self.variations:
            if v.name.lower() == name.lower():
                return v
        known = ", ".join(v.name for v in self.variations) or "only the default"
        raise InvalidParameterError(f"{self.name} has no variation {name!r}; it has {known}. "
                                    "Add one with register_asset(variation=...).")

    def image(self, variation: Variation | None = None, view: str = "front") -> str:
        """Where an image of this asset goes (whether or not it exists yet)."""
        v = variation or self.default
        # images belong to the variation's name; "default" is the base look (the flag only picks one)
        return layout.asset_image(self.kind, self.slug, v.name, view)

    def images(self, project: Project, variation: Variation | None = None) -> list[str]:
        """Existing images of a variation, primary first (front, then side, back, turnaround)."""
        if self.kind == "location":
            path = self.image(variation)
            return [path] if project.exists(path) else []
        return [p for p in (self.image(variation, view) for view in VIEWS) if project.exists(p)]

    def primary(self, project: Project, variation: Variation | None = None) -> str | None:
        found = self.images(project, variation)
        return found[0] if found else None

    def text(self, variation: Variation | None = None) -> str:
        """The description a prompt gets: the anchor phrase, plus what the variation changes."""
        v = variation or self.default
        base = (self.description or self.name).strip()
        return f"{base} ({v.name}: {v.description})" if not v.default and v.description else base


def load_assets(project: Project) -> dict[str, Asset]:
    """Every character and location, keyed by lowercase slug and by lowercase name without spaces."""
    from .storyboard.markdown import parse, tables
    from .storyboard.reader import load_cast

    ctx = load_cast(project.root)
    found: list[Asset] = []
    for c in ctx.characters.values():
        found.append(Asset("character", c.name, c.slug, c.file, c.anchor))
    for sc in ctx.scenes.values():
        found.append(Asset("location", sc.name, sc.slug, sc.file, sc.prompt))
    index: dict[str, Asset] = {}
    for a in found:
        try:
            doc = parse(project.read_bytes(a.file))
        except InputError:  # a link out of the project: the reader already left it out
            continue
        section = doc.root.child(r"variation")
        if section is not None:
            for table in tables(section.lines):
                header = table.header.cells if table.header is not None else list(VARIATIONS_HEADER)
                for row in table.rows:
                    cells = dict(zip((h.lower() for h in header), row.cells, strict=False))
                    name = (cells.get("variation") or "").strip().strip("`")
                    if name:
                        default = (cells.get("default") or "").strip().lower() in ("yes", "true", "x", "✓", "default")
                        a.variations.append(Variation(name, (cells.get("description") or "").strip(), default))
        for key in {a.slug.lower(), re.sub(r"\s+", "", a.name.lower()), re.sub(r"\s+", "-", a.name.lower())}:
            index.setdefault(key, a)
    return index


def unique(index: dict[str, Asset]) -> list[Asset]:
    return list({id(a): a for a in index.values()}.values())


def save_asset(project: Project, kind: str, name: str, *, description: str | None = None,
               variation: str | None = None, variation_description: str | None = None,
               make_default: bool = False) -> Asset:
    """Create or update an asset's Markdown file, keeping everything a person wrote in it."""
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be character or location, not {kind!r}.")
    folder, _, title_word, section_title = KINDS[kind]
    existing = load_assets(project).get(re.sub(r"\s+", "", name.lower())) or load_assets(project).get(make_slug(name))
    if existing is not None and existing.kind != kind:
        raise InvalidParameterError(f"{name!r} is already a {existing.kind}; use another name.")
    path = project.output_path(existing.file if existing else f"{folder}/{make_slug(name, fallback=kind)}.md")
    text = path.read_text(encoding="utf-8") if path.exists() else f"# {title_word}: {name.strip()}\n"
    if description is not None:
        text = _set_quote(text, section_title, description)
    if variation is not None:
        text = _set_variation(text, variation, variation_description or "", make_default)
    project.write_text(path, text)
    assets = load_assets(project)
    return assets.get(path.stem.lower()) or next(a for a in unique(assets) if a.file == project.rel(path))


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _set_quote(text: str, title: str, quote: str) -> str:
    """The blockquote of `## <title>` set to `quote` (the section is added when missing)."""
    nl = _newline(text)
    block = nl.join(f"> {line}".rstrip() for line in quote.strip().splitlines())
    pattern = re.compile(rf"(^##\s+{re.escape(title)}\s*$)(.*?)(?=^##\s|\Z)", re.MULTILINE | re.DOTALL | re.IGNORECASE)
    m = pattern.search(text)
    if m is None:
        return text.rstrip() + f"{nl}{nl}## {title}{nl}{nl}{block}{nl}"
    body = m.group(2)
    lines = body.split(nl)
    kept = [ln for ln in lines if not ln.lstrip().startswith(">")]
    first_quote = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith(">")), None)
    if first_quote is None:
        new_body = f"{nl}{nl}{block}{nl}" + nl.join(kept).strip(nl) + (nl if kept and any(kept) else "")
    else:
        before = nl.join(lines[:first_quote])
        after = nl.join(ln for ln in lines[first_quote:] if not ln.lstrip().startswith(">"))
        new_body = f"{before}{block}{nl}{after}"
    return text[: m.start(2)] + new_body + text[m.end(2):]


def _set_variation(text: str, name: str, description: str, make_default: bool) -> str:
    """A row of the `## Variations` table set (added when missing); only one row says Default: yes."""
    nl = _newline(text)
    lines = text.split(nl)
    head = next((i for i, ln in enumerate(lines) if re.match(r"^##\s+variations?\s*$", ln.strip(), re.IGNORECASE)), None)
    if head is None:
        lines += ["", "## Variations", "", "| " + " | ".join(VARIATIONS_HEADER) + " |", "|---|---|---|",
                  "| default |  | yes |"]
        head = len(lines) - 5
    start = next((i for i in range(head + 1, len(lines)) if lines[i].lstrip().startswith("|")), None)
    if start is None:
        lines[head + 1:head + 1] = ["", "| " + " | ".join(VARIATIONS_HEADER) + " |", "|---|---|---|", "| default |  | yes |"]
        start = head + 2
    end = start + 2
    while end < len(lines) and lines[end].lstrip().startswith("|"):
        end += 1
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines[start + 2:end]]
    rows = [r + [""] * (3 - len(r)) for r in rows]
    found = next((r for r in rows if r[0].strip("`").lower() == name.lower()), None)
    if found is None:
        found = [name, description, ""]
        rows.append(found)
    elif description:
        found[1] = description
    if make_default:
        for r in rows:
            r[2] = "yes" if r is found else ""
    lines[start + 2:end] = ["| " + " | ".join(r[:3]) + " |" for r in rows]
    return nl.join(lines) if text.endswith(nl) or not text else nl.join(lines)
