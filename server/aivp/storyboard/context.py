"""What a file reader needs besides the file: where to report problems and the names it may mention."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .. import layout
from .model import Character, FrameRef, Problem, Scene


@dataclass
class Ctx:
    """The file being read (project-relative), the shared problem list and the known names."""

    file: str
    problems: list[Problem]
    characters: dict[str, Character]
    scenes: dict[str, Scene]

    def at(self, file: str) -> Ctx:
        return replace(self, file=file)

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def known_characters(self) -> str:
        return ", ".join(f"@{c.name}" for c in self.characters.values()) or f"none ({layout.SCRIPT_CHARACTERS}/ is empty)"

    def find_character(self, name: str) -> Character | None:
        wanted = name.strip().lstrip("@").strip().lower()
        return next((c for c in self.characters.values() if wanted in c.aliases), None)

    def character(self, name: str, line: int | None) -> str:
        """The character's own name for `name`; an unknown name is a problem and kept as written."""
        found = self.find_character(name)
        if found:
            return found.name
        bare = name.strip().lstrip("@")
        sheet = layout.asset_markdown("character", _slug(bare))
        self.problem(line, f"@{bare} has no character sheet: add {sheet} or use one of "
                           f"the known characters: {self.known_characters()}")
        return bare

    def speaker(self, name: str | None) -> str | None:
        """A dialogue speaker: the character's name when it is one, else as written (narrators, V.O.)."""
        if not name:
            return None
        found = self.find_character(name)
        return found.name if found else name.strip().lstrip("@")

    def scene(self, name: str, line: int | None, context: str = "") -> str:
        """The slug for `name` (slug or `# Scene:` name; else the first known scene named in `context`)."""
        wanted = name.strip().lower()
        for s in self.scenes.values():
            if wanted in (s.slug.lower(), s.name.lower(), _slug(s.name)):
                return s.slug
        low = context.lower()
        for s in self.scenes.values():
            if re.search(rf"(?<![\w-]){re.escape(s.slug.lower())}(?![\w-])", low) or s.name.lower() in low:
                return s.slug
        known = ", ".join(self.scenes) or f"none ({layout.SCRIPT_SCENES}/ is empty)"
        sheet = layout.asset_markdown("location", _slug(name))
        self.problem(line, f"scene {name!r} has no scene sheet: add {sheet} or use one of the "
                           f"known scenes: {known}")
        return name

    def ref(self, ref: FrameRef, line: int | None) -> FrameRef:
        """`ref` with its character or scene name made canonical (unknown names are problems)."""
        if ref.kind == "character" and ref.name:
            return replace(ref, name=self.character(ref.name, line))
        if ref.kind == "scene" and ref.name:
            return replace(ref, name=self.scene(ref.name, line, ref.raw))
        return ref


def _slug(name: str) -> str:
    return re.sub(r"[^\w]+", "-", name.strip().lower()).strip("-") or "name"
