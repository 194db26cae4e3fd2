"""Speech in a clip: a clip meant to carry dialogue gets native audio when its model can voice it.

A shot has dialogue when the storyboard's Audio table says so (`Call.dialogue`), or when its prompt
has a spoken line: `[Mara, low]: "Line"`, `Mara: "Line"`, or a quoted line with a speech word near it
(`she says "Go!"`); a quoted sign or title alone is not speech. Audio is then turned on unless the
caller set it (audio=false wins) or the model already makes sound by default, and the reason says
what it adds to the price.
"""

from __future__ import annotations

import re
from typing import Any

from ..catalog.params import Built
from ..catalog.pricing import estimate_call
from ..catalog.schema import Param

SPEECH = re.compile(r"\b(?:say|says|said|saying|ask|asks|asked|shouts?|shouted|whispers?|whispered|calls?|called|"
                    r"calling|repl(?:y|ies|ied)|answers?|answered|yells?|yelled|mutters?|murmurs?|speaks?|speaking|"
                    r"spoke|exclaims?|tells?|told|sings?|dialogue|line)\b|说|喊|问|回答|低语", re.IGNORECASE)


def has_dialogue(text: str | None) -> bool:
    """A spoken line in a prompt (see the module text)."""
    if not text:
        return False
    from ..storyboard.values import BARE, parse_dialogue  # lazy: the storyboard package costs 14 ms of start-up

    return bool(parse_dialogue(text, bare=False)) or bool(BARE.search(text) and SPEECH.search(text))


def voice_dialogue(roles: dict[str, Any], params: dict[str, Param], said: bool | None, prompts: list[str],
                   options: dict[str, Any] | None = None) -> bool:
    """Set audio on for a clip with dialogue whose model can voice it and whose caller left audio unset.

    `said`: whether the clip has dialogue, when the storyboard says (else `prompts`, the clip's prompt or its shots'
    prompts, are read). True when it set audio; nothing changes for a model that makes sound by default or has
    no audio switch, nor when the caller set that switch (as audio or in options)."""
    switch = next((n for n, p in params.items() if p.role == "audio" and p.type == "boolean"), None)
    if switch is None or params[switch].default is True or roles.get("audio") is not None or switch in (options or {}):
        return False
    if said if said is not None else any(has_dialogue(p) for p in prompts):
        roles["audio"] = True
        return True
    return False


VOICED = "audio on for dialogue"  # how every audio_note starts (the storyboard plan shows it in the step's note)


def audio_note(built: Built) -> str:
    """"audio on for dialogue (+$0.280; audio=false to save)": what the sound adds to this call's price."""
    name = built.role_field("audio")
    on = estimate_call(built.model, built.endpoint, built.route, built.effective)
    off = estimate_call(built.model, built.endpoint, built.route, {**built.effective, name or "": False})
    more = on.usd - off.usd
    if not (on.known and off.known):
        return f"{VOICED} (audio=false turns it off)"
    if more < 0.0005:
        return f"{VOICED} (no extra cost; audio=false turns it off)"
    return f"{VOICED} (+${more:.3f}; audio=false to save)"
