"""@mentions: `@Name` or `@Name:variation` in a prompt names a character or location asset.

A mention becomes the asset's name in the text plus its description (the anchor phrase, or the scene
prompt) in a short cast list after the prompt, and attaches its primary image as a reference. The
order of references is characters in mention order, then locations, then the caller's own
additional references (at most five). Kling's @Element1/@Image1 and Seedance's @图片1 are not
mentions and are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .assets import Asset, Variation, load_assets, unique
from .errors import InvalidParameterError
from .project import Project

MENTION = re.compile(r"(?<![\w@/.])@([^\s@,.;!?\"'()\[\]{}<>:：，。]+)(?::([\w\u00C0-\uFFFF-]+))?")
NOT_MENTIONS = re.compile(r"^(Element|Image|Video|Audio)\d+$|^(图片|视频|音频)\d+$", re.IGNORECASE)
MAX_EXTRA_REFS = 5


@dataclass
class Expansion:
    prompt: str
    references: list[str]  # ordered: characters, locations, extra
    kinds: list[str]  # "character" | "location" | "extra", one per reference
    cast: list[tuple[Asset, Variation]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def mentioned(self) -> bool:
        return bool(self.cast)


def expand(project: Project, prompt: str | None, extra: list[str] | None = None,
           variations: dict[str, str] | None = None) -> Expansion:
    """Resolve every @mention of `prompt`; unknown names are an error that lists the known ones."""
    extra = list(extra or [])
    if len(extra) > MAX_EXTRA_REFS:
        raise InvalidParameterError(
            f"At most {MAX_EXTRA_REFS} additional reference images may come with a call; {len(extra)} were given. "
            "Characters and locations named with @ come on top of those.")
    if not prompt or "@" not in prompt:
        return Expansion(prompt or "", extra, ["extra"] * len(extra))
    index: dict[str, Asset] | None = None
    overrides = {k.lstrip("@").lower(): v for k, v in (variations or {}).items()}
    cast: list[tuple[Asset, Variation]] = []

    def swap(m: re.Match[str]) -> str:
        nonlocal index
        name, variation = m.group(1), m.group(2)
        if NOT_MENTIONS.match(name):
            return m.group(0)
        if index is None:
            index = load_assets(project)
        asset = index.get(name.lower()) or index.get(name.lower().replace("_", "-"))
        if asset is None:
            known = ", ".join(sorted(f"@{a.slug}" for a in unique(index))) or "none yet"
            raise InvalidParameterError(
                f"@{name} is not a character or location of this project. Known: {known}. Register it with "
                "register_asset (or make its sheet with make_asset_sheet), or drop the @.")
        chosen = asset.variation(variation or overrides.get(asset.slug.lower()) or overrides.get(name.lower()))
        if all(a is not asset for a, _ in cast):
            cast.append((asset, chosen))
        return asset.name

    text = MENTION.sub(swap, prompt)
    unknown_overrides = set(overrides) - {a.slug.lower() for a, _ in cast} - {a.name.lower() for a, _ in cast}
    if unknown_overrides:
        raise InvalidParameterError(f"variations names {sorted(unknown_overrides)}, which the prompt does not mention.")
    ordered = [c for c in cast if c[0].kind == "character"] + [c for c in cast if c[0].kind == "location"]
    refs, kinds, lines, notes = [], [], [], []
    for asset, variation in ordered:
        primary = asset.primary(project, variation)
        label = asset.text(variation)
        if primary:
            refs.append(primary)
            kinds.append(asset.kind)
            lines.append(f"{asset.name} (reference image {len(refs)}): {label}")
        else:
            lines.append(f"{asset.name}: {label}")
            notes.append(f"{asset.name} has no {'sheet' if asset.kind == 'character' else 'plate'} for "
                         f"'{variation.name}' yet ({asset.image(variation)}); only the description was used.")
    refs += extra
    kinds += ["extra"] * len(extra)
    if lines:
        text = f"{text.rstrip()}\n\n" + "\n".join(lines)
    return Expansion(text, refs, kinds, ordered, notes)


def drop_to(exp: Expansion, cap: int, model_id: str) -> Expansion:
    """Keep the first `cap` references (characters first); say which were dropped and why."""
    if len(exp.references) <= cap:
        return exp
    dropped = exp.references[cap:]
    note = (f"{model_id} takes {cap} reference image(s); dropped {', '.join(dropped)}. Pick a model that takes more "
            "(search_models(capabilities=['multi-reference'])) to keep them.")
    return Expansion(exp.prompt, exp.references[:cap], exp.kinds[:cap], exp.cast, [*exp.notes, note])


def mentioned(project: Project, texts: list[str | None], variations: dict[str, str] | None = None,
              ) -> list[tuple[str, Asset, Variation]]:
    """(name as written, asset, variation) for each asset the texts mention, in order of first mention."""
    overrides = {k.lstrip("@").lower(): v for k, v in (variations or {}).items()}
    index: dict[str, Asset] | None = None
    found: list[tuple[str, Asset, Variation]] = []
    for text in texts:
        for m in MENTION.finditer(text or ""):
            name, variation = m.group(1), m.group(2)
            if NOT_MENTIONS.match(name):
                continue
            if index is None:
                index = load_assets(project)
            asset = index.get(name.lower())
            if asset is None:
                known = ", ".join(sorted(f"@{a.slug}" for a in unique(index))) or "none yet"
                raise InvalidParameterError(f"@{name} is not a character or location of this project. Known: {known}.")
            if all(a is not asset for _, a, _ in found):
                chosen = asset.variation(variation or overrides.get(asset.slug.lower()) or overrides.get(name.lower()))
                found.append((name, asset, chosen))
    return found
