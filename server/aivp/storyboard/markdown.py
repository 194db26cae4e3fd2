"""Just enough Markdown for the storyboard files, with 1-based line numbers kept everywhere.

Not a Markdown renderer: it finds headings (outside fenced code), two-dimensional tables, blockquotes,
fenced blocks, `**Label**: value` fields and list items, and is lenient about how people and agents
type them: CRLF or lone CR, a BOM, misaligned pipes, missing leading or trailing pipes, bold or
backticks in cells, `**Label:**` as well as `**Label**:`, full-width colons.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Line:
    """One source line and its 1-based number in the file."""

    no: int
    text: str


@dataclass
class Section:
    """A heading and everything under it up to the next heading of the same or a higher level."""

    title: str
    level: int  # 0 for the document itself
    line: int  # line of the heading; 0 for the document
    lines: list[Line] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)

    @property
    def key(self) -> str:
        return heading_key(self.title)

    @property
    def body(self) -> list[Line]:
        """The lines before the first sub-heading."""
        if not self.children:
            return self.lines
        first = self.children[0].line
        return [ln for ln in self.lines if ln.no < first]

    def walk(self) -> Iterator[Section]:
        for child in self.children:
            yield child
            yield from child.walk()

    def find(self, pattern: str) -> Section | None:
        """The first section below this one whose normalised title matches `pattern` (a regex)."""
        return next((s for s in self.walk() if re.search(pattern, s.key)), None)

    def child(self, pattern: str) -> Section | None:
        """Like `find`, but among the direct children first (then anywhere below)."""
        return next((s for s in self.children if re.search(pattern, s.key)), None) or self.find(pattern)


@dataclass
class Document:
    """A parsed file: the section tree plus what the parser itself could not make sense of."""

    root: Section
    warnings: list[tuple[int, str]]
    undecodable_line: int | None = None

    @property
    def title(self) -> Section | None:
        return next((s for s in self.root.walk() if s.level == 1), None)


def decode(data: bytes) -> tuple[str, int | None]:
    """The text of a file (BOM dropped) and, if it was not valid UTF-8, the first bad line."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as e:
        return data.decode("utf-8-sig", errors="replace"), data.count(b"\n", 0, e.start) + 1


HEADING = re.compile(r"^\s{0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^(\s{0,3})(`{3,}|~{3,})(.*)$")


def parse(data: bytes | str) -> Document:
    """Split a file into its section tree; never raises."""
    bad_line = None
    if isinstance(data, bytes):
        data, bad_line = decode(data)
    text = data.replace("\ufeff", "")
    lines = [Line(i + 1, t) for i, t in enumerate(re.split(r"\r\n|\r|\n", text))]
    root = Section("", 0, 0, lines)
    stack = [root]
    warnings: list[tuple[int, str]] = []
    fence: tuple[str, int, int] | None = None  # (char, length, opening line)
    for ln in lines:
        m = FENCE.match(ln.text)
        if fence is not None:
            if m and m.group(2)[0] == fence[0] and len(m.group(2)) >= fence[1] and not m.group(3).strip():
                fence = None
            continue
        if m and not (m.group(2)[0] == "`" and "`" in m.group(3)):
            fence = (m.group(2)[0], len(m.group(2)), ln.no)
            continue
        h = HEADING.match(ln.text)
        if not h:
            continue
        level = len(h.group(1))
        while stack[-1].level >= level:
            stack.pop()
        section = Section(clean(h.group(2)), level, ln.no)
        stack[-1].children.append(section)
        stack.append(section)
    if fence is not None:
        warnings.append((fence[2], "a code block opened here (```) is never closed; close it with ``` on its own line"))
    _fill(root, lines)
    return Document(root, warnings, bad_line)


def _fill(section: Section, lines: list[Line], end: int | None = None) -> None:
    """Give every section its lines: up to the next sibling (or the parent's end)."""
    for i, child in enumerate(section.children):
        stop = section.children[i + 1].line if i + 1 < len(section.children) else end
        child.lines = [ln for ln in lines if ln.no > child.line and (stop is None or ln.no < stop)]
        _fill(child, lines, stop)


# ------------------------------------------------------------------ inline text


def clean(text: str) -> str:
    """Inline text without Markdown decoration: no bold, backticks, `<br>`, doubled spaces."""
    text = re.sub(r"<br\s*/?>", "\n", text, flags=re.IGNORECASE)
    text = text.replace("**", "").replace("__", "").replace("`", "").replace("\\|", "|")
    text = "\n".join(re.sub(r"[ \t\u00a0]+", " ", part).strip() for part in text.split("\n")).strip()
    if len(text) > 2 and text[0] == text[-1] and text[0] in "*_":  # a wholly italic value
        text = text[1:-1].strip()
    return text


def heading_key(title: str) -> str:
    """A title normalised for matching: lowercase, no parenthetical, no trailing colon."""
    text = re.sub(r"[（(][^)）]*[)）]", " ", clean(title).lower().replace("：", ":"))
    return re.sub(r"\s+", " ", text).strip(" :")


def squash(text: str) -> str:
    """Lowercase letters and digits only: `Shot ID`, `shot_id` and `ShotID` all give `shotid`."""
    return re.sub(r"[\W_]+", "", text.lower())


# ------------------------------------------------------------------ tables

SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


@dataclass(frozen=True)
class Row:
    line: int
    cells: list[str]  # cleaned
    raw: str


@dataclass(frozen=True)
class Table:
    line: int
    header: Row | None  # the row above the `|---|` line, if there is one
    rows: list[Row]


def split_row(text: str) -> list[str]:
    body = text.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [clean(c) for c in re.split(r"(?<!\\)\|", body)]


def tables(lines: list[Line]) -> list[Table]:
    """Every table in `lines`: a run of lines with pipes that starts with `|` or has a `---` row."""
    out: list[Table] = []
    block: list[Line] = []
    for ln in [*_outside_fences(lines), Line(0, "")]:
        if "|" in ln.text and ln.text.strip():
            block.append(ln)
            continue
        if block:
            has_sep = len(block) > 1 and SEPARATOR.match(block[1].text) is not None
            if has_sep or block[0].text.lstrip().startswith("|"):
                header = Row(block[0].no, split_row(block[0].text), block[0].text) if has_sep else None
                rows = [Row(b.no, split_row(b.text), b.text) for b in block[(2 if has_sep else 0) :]
                        if not SEPARATOR.match(b.text)]
                out.append(Table(block[0].no, header, rows))
            block = []
    return out


def _outside_fences(lines: list[Line]) -> list[Line]:
    out, fence = [], None
    for ln in lines:
        m = FENCE.match(ln.text)
        if fence is not None:
            if m and m.group(2)[0] == fence[0] and len(m.group(2)) >= len(fence) and not m.group(3).strip():
                fence = None
        elif m and not (m.group(2)[0] == "`" and "`" in m.group(3)):
            fence = m.group(2)
        else:
            out.append(ln)
    return out


# ------------------------------------------------------------------ blocks

QUOTE = re.compile(r"^\s{0,3}>[ ]?")


def blockquote(lines: list[Line]) -> tuple[str, int] | None:
    """The first blockquote in `lines` (text exactly as written, without `> `) and its line."""
    start = next((i for i, ln in enumerate(lines) if QUOTE.match(ln.text)), None)
    if start is None:
        return None
    parts: list[str] = []
    i = start
    while i < len(lines):
        text = lines[i].text
        if QUOTE.match(text):
            parts.append(QUOTE.sub("", text, count=1))
        elif not text.strip():  # a blank line continues the quote only if more quote lines follow
            nxt = next((ln for ln in lines[i + 1 :] if ln.text.strip()), None)
            if nxt is None or not QUOTE.match(nxt.text):
                break
            parts.append("")
        else:
            break
        i += 1
    return "\n".join(parts).strip(), lines[start].no


def fenced(lines: list[Line]) -> list[tuple[str, int]]:
    """Every fenced code block in `lines`: its text exactly as written and its opening line."""
    out: list[tuple[str, int]] = []
    fence: str | None = None
    body: list[str] = []
    opened = 0
    for ln in lines:
        m = FENCE.match(ln.text)
        if fence is None:
            if m and not (m.group(2)[0] == "`" and "`" in m.group(3)):
                fence, body, opened = m.group(2), [], ln.no
        elif m and m.group(2)[0] == fence[0] and len(m.group(2)) >= len(fence) and not m.group(3).strip():
            out.append(("\n".join(body).strip(), opened))
            fence = None
        else:
            body.append(ln.text)
    if fence is not None:
        out.append(("\n".join(body).strip(), opened))
    return out


def paragraph(lines: list[Line]) -> str:
    """Plain text of `lines` outside lists, quotes, tables and code, or '' if there is none."""
    kept = [ln.text.strip() for ln in _outside_fences(lines)
            if not QUOTE.match(ln.text) and not ITEM.match(ln.text) and not ln.text.lstrip().startswith("|")
            and not re.fullmatch(r"\s*([-*_]\s*){3,}", ln.text)]
    return clean("\n".join(kept))


# ------------------------------------------------------------------ fields and list items

ITEM = re.compile(r"^(\s*)(?:[-*+]|\d{1,3}[.)])\s+(.*)$")
BOLD_LABEL = re.compile(r"^\s*(?:(?:[-*+]|\d{1,3}[.)])\s+)?\*\*(?P<label>[^*]+?)\*\*(?P<rest>.*)$")
AFTER_LABEL = re.compile(r"^\s*(?P<qual>[（(][^)）]*[)）])?\s*[:：]\s*(?P<value>.*)$")
PLAIN_LABEL = re.compile(r"^(?P<indent>\s*)[-*+]\s+(?P<label>[A-Za-z][A-Za-z /-]*?)\s*[:：]\s*(?P<value>.*)$")


@dataclass(frozen=True)
class Field:
    """`**Label** (qualifier): value`, and the lines under it up to the next field."""

    key: str  # heading_key(label): lowercase, no qualifier
    label: str
    qualifier: str
    value: str  # cleaned
    line: int
    block: list[Line]

    @property
    def text(self) -> str:
        """The inline value, or the plain paragraph under the field."""
        return self.value or paragraph(self.block)


def fields(lines: list[Line], plain: frozenset[str] = frozenset()) -> list[Field]:
    """The bold-labelled fields in `lines`; bullets `- Label: value` count too when `label` is in `plain`
    and the bullet is not nested (so `- Scene bg: ...` under **References** stays a reference)."""
    found: list[tuple[int, str, str, str]] = []  # (index, label, qualifier, value)
    prose = _outside_fences(lines)
    outside = {ln.no for ln in prose}
    bullet_indents = [len(m.group(1)) for ln in prose if (m := ITEM.match(ln.text))]
    top = min(bullet_indents, default=0)
    for i, ln in enumerate(lines):
        if ln.no not in outside:
            continue
        if m := BOLD_LABEL.match(ln.text):
            label, rest = m.group("label").strip(), m.group("rest")
            qual = ""
            if label.endswith((":", "：")):
                label, value = label[:-1].strip(), rest
                if q := re.match(r"^\s*([（(][^)）]*[)）])", value):
                    qual, value = q.group(1), value[q.end() :]
            elif a := AFTER_LABEL.match(rest):
                qual, value = a.group("qual") or "", a.group("value")
            else:
                continue
            found.append((i, label, qual, value))
        elif (p := PLAIN_LABEL.match(ln.text)) and len(p.group("indent")) <= top and heading_key(p.group("label")) in plain:
            found.append((i, p.group("label"), "", p.group("value")))
    out = []
    for n, (i, label, qual, value) in enumerate(found):
        end = found[n + 1][0] if n + 1 < len(found) else len(lines)
        if q := re.search(r"[（(][^)）]*[)）]", label):
            qual = qual or q.group(0)
        out.append(Field(heading_key(label), label, clean(qual.strip("（）()")), clean(value), lines[i].no,
                         lines[i + 1 : end]))
    return out


def find_field(found: list[Field], pattern: str) -> Field | None:
    """The first field whose key matches `pattern` (a regex)."""
    return next((f for f in found if re.search(pattern, f.key)), None)


def items(lines: list[Line]) -> list[tuple[str, int]]:
    """List items (bullets or numbers, any depth) with wrapped continuation lines joined."""
    out: list[tuple[str, int]] = []
    for ln in _outside_fences(lines):
        if m := ITEM.match(ln.text):
            out.append((m.group(2).strip(), ln.no))
        elif out and ln.text.strip() and ln.text[:1].isspace() and not QUOTE.match(ln.text):
            out[-1] = (f"{out[-1][0]} {ln.text.strip()}", out[-1][1])
    return out
