"""mentions.py: `@Name` / `@Name:variation` in a prompt resolved against the project's asset files."""

from __future__ import annotations

from pathlib import Path

import pytest

from aivp.assets import save_asset
from aivp.errors import InvalidParameterError
from aivp.mentions import MAX_EXTRA_REFS, drop_to, expand, mentioned
from aivp.project import Project

from .conftest import png

MARA = "Woman in her sixties, silver braid, yellow oilskin raincoat"
THEO = "Young man, red beanie, navy pea coat"
ROOM = "A lighthouse lantern room at night, rain on the glass"

THEO_MD = f"""# Character: Theo

Written by hand, as a person would.

## Prompt Anchor Phrase

> {THEO}
"""


@pytest.fixture
def proj(project: Path) -> Project:
    """Mara (a night variation with its own sheet, a storm variation without one), Theo, the Lantern Room."""
    p = Project(project)
    save_asset(p, "character", "Mara", description=MARA)
    save_asset(p, "character", "Mara", variation="night", variation_description="dark wool coat, lantern in hand")
    save_asset(p, "character", "Mara", variation="storm", variation_description="soaked, hood up")
    (project / "script/characters/theo.md").write_text(THEO_MD, encoding="utf-8")
    save_asset(p, "location", "Lantern Room", description=ROOM)
    for rel in ("image/characters/mara-front.png", "image/characters/mara-side.png",
                "image/characters/mara-night-front.png", "image/characters/theo-front.png",
                "image/locations/lantern-room.png", "in/extra-1.png"):
        png(project / rel, size=(32, 32))
    return p


def test_references_are_characters_in_mention_order_then_locations_then_extra(proj: Project) -> None:
    exp = expand(proj, "In the @lantern-room, @Theo hands @Mara the lamp; @Mara nods.", ["in/extra-1.png"])
    assert exp.references == ["image/characters/theo-front.png", "image/characters/mara-front.png",
                              "image/locations/lantern-room.png", "in/extra-1.png"]
    assert exp.kinds == ["character", "character", "location", "extra"]
    assert [a.name for a, _ in exp.cast] == ["Theo", "Mara", "Lantern Room"]  # Mara once, though named twice
    assert exp.mentioned and exp.notes == []
    body, _, cast = exp.prompt.partition("\n\n")
    assert body == "In the Lantern Room, Theo hands Mara the lamp; Mara nods."
    assert cast.splitlines() == [f"Theo (reference image 1): {THEO}", f"Mara (reference image 2): {MARA}",
                                 f"Lantern Room (reference image 3): {ROOM}"]


def test_a_variation_by_suffix_or_by_the_variations_dict(proj: Project) -> None:
    by_suffix = expand(proj, "@Mara:night climbs the stairs.")
    by_dict = expand(proj, "@Mara climbs the stairs.", variations={"@Mara": "night"})
    for exp in (by_suffix, by_dict):
        assert exp.references == ["image/characters/mara-night-front.png"]
        assert exp.prompt == f"Mara climbs the stairs.\n\nMara (reference image 1): {MARA} (night: dark wool coat, lantern in hand)"
        assert exp.cast[0][1].name == "night"
    assert expand(proj, "@Mara:default waits.").references == ["image/characters/mara-front.png"]
    # the suffix wins over the dict
    assert expand(proj, "@Mara:night", variations={"Mara": "storm"}).cast[0][1].name == "night"


def test_a_variation_without_a_sheet_uses_the_description_and_says_so(proj: Project) -> None:
    exp = expand(proj, "@Mara:storm on the gallery, @Theo behind her.")
    assert exp.references == ["image/characters/theo-front.png"]  # Mara has no storm sheet
    assert f"Mara: {MARA} (storm: soaked, hood up)" in exp.prompt.splitlines()
    assert f"Theo (reference image 1): {THEO}" in exp.prompt.splitlines()
    assert len(exp.notes) == 1 and "Mara has no sheet for 'storm'" in exp.notes[0]
    assert "image/characters/mara-storm-front.png" in exp.notes[0]


def test_unknown_names_list_the_known_ones(proj: Project) -> None:
    with pytest.raises(InvalidParameterError) as info:
        expand(proj, "@Elena walks in.")
    text = str(info.value)
    assert "@Elena is not a character or location" in text
    assert "Known: @lantern-room, @mara, @theo." in text
    with pytest.raises(InvalidParameterError, match="no variation 'dawn'; it has default, night, storm"):
        expand(proj, "@Mara:dawn")
    with pytest.raises(InvalidParameterError, match="variations names \\['theo'\\], which the prompt does not mention"):
        expand(proj, "@Mara alone.", variations={"Theo": "night"})
    with pytest.raises(InvalidParameterError, match="Known: none yet"):
        expand(Project(proj.root / "empty"), "@Mara")


def test_model_tokens_and_other_ats_are_left_alone(proj: Project) -> None:
    for prompt in ("@Element1 and @Element2 by the lens", "@图片1 作为首帧画面, @视频2", "@Image3 @video1 @Audio2",
                   "write to mara@lighthouse.org", "see @ the end"):
        exp = expand(proj, prompt)
        assert exp.prompt == prompt and exp.references == [] and not exp.mentioned, prompt
    mixed = expand(proj, "@Element1 looks at @Mara")
    assert mixed.prompt.startswith("@Element1 looks at Mara\n\n") and mixed.references == ["image/characters/mara-front.png"]
    assert expand(proj, None).prompt == "" and expand(proj, "no mentions", ["in/extra-1.png"]).kinds == ["extra"]


def test_more_than_five_extra_references_are_refused(proj: Project) -> None:
    five = [f"in/r{n}.png" for n in range(MAX_EXTRA_REFS)]
    assert MAX_EXTRA_REFS == 5
    assert expand(proj, "plain", five).references == five
    with pytest.raises(InvalidParameterError, match="At most 5 additional reference images .* 6 were given"):
        expand(proj, "plain", [*five, "in/r5.png"])
    # @mentions come on top of the five
    exp = expand(proj, "@Mara and @Theo", five)
    assert len(exp.references) == 7 and exp.kinds[:2] == ["character", "character"]


def test_drop_to_keeps_characters_first_and_says_what_went(proj: Project) -> None:
    exp = expand(proj, "@lantern-room: @Mara and @Theo", ["in/extra-1.png"])
    kept = drop_to(exp, 2, "some-model")
    assert kept.references == ["image/characters/mara-front.png", "image/characters/theo-front.png"]
    assert kept.kinds == ["character", "character"] and kept.cast == exp.cast and kept.prompt == exp.prompt
    assert kept.notes[-1].startswith("some-model takes 2 reference image(s); dropped "
                                     "image/locations/lantern-room.png, in/extra-1.png.")
    assert drop_to(exp, 4, "some-model") is exp  # nothing to drop


def test_mentioned_lists_assets_in_order_of_first_mention(proj: Project) -> None:
    found = mentioned(proj, ["@Theo at the radio", None, "@mara:night and @Theo", "@Lantern-Room @Element1"])
    assert [(name, a.slug, v.name) for name, a, v in found] == [
        ("Theo", "theo", "default"), ("mara", "mara", "night"), ("Lantern-Room", "lantern-room", "default")]
    found = mentioned(proj, ["@Mara"], variations={"mara": "storm"})
    assert [(a.slug, v.name) for _, a, v in found] == [("mara", "storm")]
    assert mentioned(proj, ["nothing here", "@图片1"]) == []
    with pytest.raises(InvalidParameterError, match="@Nobody is not a character .* Known: @lantern-room, @mara, @theo"):
        mentioned(proj, ["@Nobody"])
