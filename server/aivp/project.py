"""The project folder: the one containment check every path goes through, and safe writes inside it.

Where things go by name is `layout.py`; this module turns those names into checked absolute paths
(inside the project root, or a read-only extra root for inputs; never `.aivp/` or a hidden file).

Nothing is overwritten silently: `place()` links a finished temporary file to a free name
atomically and only replaces an existing file when the caller asked for it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from . import layout
from .errors import InputError, InputFileError, PathOutsideProject
from .layout import GENERATED, LOG_DIR, PLAN, STATE_DIR, slug

__all__ = ["GENERATED", "LOG_DIR", "PLAN", "PLAN_HEADER", "Project", "STATE_DIR", "set_plan_row", "slug"]
PLAN_HEADER = ("#", "Type", "File", "Model", "Mode", "Status")


class Project:
    """A project root plus the extra roots inputs may also come from."""

    def __init__(self, root: Path, extra_roots: tuple[Path, ...] = ()) -> None:
        self.root = root.resolve()
        self.extra_roots = tuple(r.resolve() for r in extra_roots)
        self.state_dir = self.root / STATE_DIR

    # ---------------------------------------------------------------- containment

    def _check(self, raw: str | Path, roots: tuple[Path, ...], purpose: str) -> Path:
        text = str(raw)
        if "\x00" in text:
            raise PathOutsideProject(f"The path {text!r} contains a NUL byte; pass a plain path.")
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) or text.startswith("file:"):
            raise PathOutsideProject(
                f"{text!r} is a URL, not a project path. Only http(s) URLs and data: URIs are accepted as "
                "remote inputs; for a local file pass its path inside the project, e.g. image/frames/shot-01-ff.png."
            )
        if "\\" in text:
            raise PathOutsideProject(
                f"{text!r} uses backslashes; project paths use forward slashes and stay inside the project, "
                "e.g. image/frames/shot-01-ff.png.")
        check_name_lengths(text)
        path = Path(text).expanduser()
        candidate = path if path.is_absolute() else self.root / path
        try:
            resolved = candidate.resolve()  # follows symlinks: a link pointing outside is caught below
        except (OSError, RuntimeError) as exc:  # a symlink loop, or a name the filesystem refuses
            raise PathOutsideProject(f"{text!r} cannot be resolved ({exc.__class__.__name__}: {exc}); "
                                     "pass a plain path inside the project.") from None
        for root in roots:
            if resolved == root or resolved.is_relative_to(root):
                break
        else:
            lexical = Path(os.path.normpath(candidate))
            if any(lexical == r or lexical.is_relative_to(r) for r in roots):
                link = _escaping_link(lexical, roots)
                raise PathOutsideProject(
                    f"{text!r} goes through {link!r}, a symbolic link that points outside the project "
                    f"(to {resolved.parent}); aivp does not follow links out of the project. Replace the link with "
                    "a real folder or file inside the project.")
            allowed = ", ".join(str(r) for r in roots)
            raise PathOutsideProject(
                f"{text!r} is outside the project ({allowed}); aivp only {purpose} files inside it. "
                "Copy the file into the project folder, or add its folder to AIVP_EXTRA_ROOTS."
            )
        if resolved == self.state_dir or resolved.is_relative_to(self.state_dir):
            raise PathOutsideProject(f"{text!r} is inside {STATE_DIR}/, aivp's private state; pick another path.")
        inside = resolved.relative_to(root) if resolved != root else Path()
        if any(part.startswith(".") for part in inside.parts):
            # hidden files hold secrets (.env with the API keys, .git, .ssh): never read, served or written
            raise PathOutsideProject(f"{text!r} is a hidden file or inside a hidden folder; aivp does not touch those "
                                     "(they hold keys and settings). Use a visible path.")
        return resolved

    def exists(self, rel: str | Path) -> bool:
        """A regular file at a project path, reached without leaving the project (a link out counts as absent)."""
        try:
            return self.output_path(rel).is_file()
        except InputError:
            return False

    def read_bytes(self, rel: str | Path) -> bytes:
        """A project file's bytes, through the containment check (the project root only, not extra roots)."""
        path = self.output_path(rel)
        if not path.is_file():
            raise InputFileError(f"{self.rel(path)} does not exist in the project.")
        return path.read_bytes()

    def files(self, folder: str | Path, pattern: str = "*") -> list[Path]:
        """Regular files in a project folder matching `pattern`, each inside the project (links out skipped)."""
        base = self.output_path(folder)
        if not base.is_dir():
            return []
        found = []
        for p in sorted(base.glob(pattern)):
            try:
                if p.is_file() and self.output_path(p) == p.resolve():
                    found.append(p)
            except InputError:
                continue  # a link out of the project, or a hidden file: not ours to read
        return found

    def input_path(self, raw: str | Path) -> Path:
        """A file aivp may read: inside the project or an extra root, existing, a regular file."""
        path = self._check(raw, (self.root, *self.extra_roots), "reads")
        if not path.exists():
            raise InputFileError(f"{raw!r} does not exist in the project ({self.rel(path)}); check the path.")
        if not path.is_file():
            raise InputFileError(f"{raw!r} is not a regular file; pass an image or video file.")
        return path

    def output_path(self, raw: str | Path) -> Path:
        """A path aivp may write: inside the project root only (not the extra roots)."""
        return self._check(raw, (self.root,), "writes")

    def check_saveable(self, rel: str | None, kind: str) -> None:
        """Refuse, before anything is paid for, a target a finished job could not be saved to.

        `rel` is the output path asked for (None: the generated/ folder). Checked: the characters (a
        newline or '|' would break the record and plan tables), the name lengths with room for a -N
        suffix and the record's longer name, and that the output, record and plan folders are inside
        the project and writable.
        """
        if rel is not None:
            bad = sorted({c for c in rel if c in "|\r\n" or ord(c) < 32 or ord(c) == 127})
            if bad:
                shown = ", ".join(repr(c) for c in bad)
                raise InputFileError(f"output {rel!r} contains {shown}; file names aivp writes may not hold line "
                                     "breaks, '|' or control characters (they break the records and plan tables).")
            final = self.output_path(rel)
            record = layout.record_path(kind, self.rel(final)).rsplit("/", 1)[-1]
            for name, room in ((final.name, 4), (record, 40)):  # -NN on a taken name; <folder>- on a record clash
                if len(name.encode("utf-8", "surrogateescape")) + room > MAX_NAME_BYTES:
                    raise InputFileError(f"output {rel!r}: the name is too long to save (with its record name "
                                         f"{record!r}); keep file names under {MAX_NAME_BYTES - 40} bytes.")
            if len(str(final).encode("utf-8", "surrogateescape")) + 8 > MAX_PATH_BYTES:
                raise InputFileError(f"output {rel!r} makes a path of {len(str(final))} characters; keep it under "
                                     f"{MAX_PATH_BYTES - 8}.")
            folders = [final.parent]
        else:
            folders = [self.output_path(GENERATED[kind])]
        folders += [self.output_path(LOG_DIR[kind]), self.output_path(PLAN[kind]).parent]
        for folder in folders:
            self._check_writable(folder)

    def _check_writable(self, folder: Path) -> None:
        """The folder, or the nearest part of it that exists, is a folder aivp can write in."""
        existing = folder
        while not existing.exists() and existing != self.root and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            raise InputFileError(f"{self.rel(existing)} is a file, so aivp cannot make the folder {self.rel(folder)} "
                                 "for the result; rename or move that file, or pick another output path.")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise InputFileError(f"aivp cannot write in {self.rel(existing) or 'the project folder'} (permission "
                                 "denied); fix the folder's permissions, or pick another output path.")

    def rel(self, path: Path) -> str:
        """Project-relative POSIX path for records and results (absolute if outside, e.g. an extra root)."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # ---------------------------------------------------------------- naming and writing

    def place(self, tmp: Path, final: Path, *, overwrite: bool = False) -> Path:
        """Move a finished temporary file to `final` atomically; never clobber unless `overwrite`.

        Without overwrite, an existing name gets `-2`, `-3` ... before the suffix, unless the file there
        already holds exactly these bytes: then it is that file (a server killed after placing a download
        and before recording it places it again on restart; it must not become `name-2`). The temporary
        file must be in the same folder (same filesystem), which `temp_beside()` guarantees.
        """
        final = self.output_path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            os.replace(tmp, final)
            return final
        stem, ext = final.stem, final.suffix
        for n in range(1, 10_000):
            target = final if n == 1 else final.with_name(f"{stem}-{n}{ext}")
            try:
                os.link(tmp, target)  # atomic and fails if the name is taken
            except FileExistsError:
                if _same_bytes(tmp, target):
                    tmp.unlink(missing_ok=True)
                    return target
                continue
            except OSError:  # filesystems without hard links: exclusive create, then replace
                try:
                    with open(target, "x"):
                        pass
                except FileExistsError:
                    continue
                os.replace(tmp, target)
                return target
            tmp.unlink(missing_ok=True)
            return target
        raise InputFileError(f"Could not find a free name next to {self.rel(final)}.")

    def temp_beside(self, final: Path, tag: str) -> Path:
        final = self.output_path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f".{final.name}.{tag}.part")

    def write_json(self, path: Path, data: Any) -> Path:
        """Write JSON atomically (temp file + replace); records are ours to replace."""
        path = self.output_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def record_path(self, kind: str, output: Path) -> Path:
        """`image/log/<stem>.json` (see `layout.record_path`), or `<folder>-<stem>.json` when another file of
        the same stem already owns that record (image/locations/harbor.png and image/styles/harbor.png)."""
        rel = self.rel(output)
        parts = rel.split("/")
        path = self.output_path(layout.record_path(kind, rel))
        if path.exists():
            try:
                owner = json.loads(path.read_text(encoding="utf-8")).get("file")
            except (OSError, ValueError):
                owner = None
            if owner not in (None, rel) and len(parts) >= 2:
                path = path.with_name(f"{parts[-2]}-{path.name}")
        return path

    def read_json(self, rel: str | Path) -> dict[str, Any]:
        """A JSON object from a project file, read through the containment check; {} when missing or unreadable."""
        try:
            data = json.loads(self.output_path(rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_bytes(self, rel: str | Path, data: bytes) -> str:
        """Write bytes at a project path atomically (the caller decided replacing is right)."""
        path = self.output_path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return self.rel(path)

    def delete(self, rel: str | Path) -> bool:
        """Remove a project file (never a folder); False when it was not there."""
        path = self.output_path(rel)
        if path.is_dir():
            raise InputFileError(f"{self.rel(path)} is a folder; aivp only deletes files.")
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    # ---------------------------------------------------------------- plan.md tables

    def update_plan(self, kind: str, file: str, *, type_: str, model: str, mode: str, status: str) -> None:
        """Set the row of `file` in image/plan.md or video/plan.md, keeping everything else as written."""
        self.update_plan_rows(kind, [(file, type_, model, mode, status)])

    def plan_text(self, kind: str) -> str:
        """image/plan.md or video/plan.md as written ("" when there is none yet)."""
        path = self.output_path(PLAN[kind])
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    def update_plan_rows(self, kind: str, rows: list[tuple[str, str, str, str, str]]) -> None:
        """Set several rows (file, type, model, mode, status) with one rewrite of the table."""
        text = self.plan_text(kind)
        for file, type_, model, mode, status in rows:
            text = set_plan_row(text, kind, file, type_=type_, model=model, mode=mode, status=status)
        self.write_text(PLAN[kind], text)

    def write_text(self, path: str | Path, text: str) -> Path:
        """Write a text file atomically (temp file + replace), inside the project."""
        path = self.output_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(text.encode("utf-8"))
        os.replace(tmp, path)
        return path


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def set_plan_row(text: str, kind: str, file: str, *, type_: str, model: str, mode: str, status: str) -> str:
    """Return `text` with the progress-table row for `file` set (added if missing).

    Only the row for that file changes. Rows people added, notes, other tables and CRLF line
    endings survive. Without a table, one is appended under a heading.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    header_at = next(
        (i for i, ln in enumerate(lines) if tuple(c.lower() for c in _cells(ln)) == tuple(h.lower() for h in PLAN_HEADER)),
        None,
    )
    shown_file = f"`{file}`"
    if header_at is None:
        title = "Image plan" if kind == "image" else "Video plan"
        block = [] if not text.strip() else [""]
        if not text.strip():
            block.append(f"# {title}")
            block.append("")
        block += ["| " + " | ".join(PLAN_HEADER) + " |", "|" + "---|" * len(PLAN_HEADER)]
        block.append(f"| 1 | {type_} | {shown_file} | `{model}` | {mode} | {status} |")
        return newline.join([*lines, *block]) + newline
    end = header_at + 2
    numbers: list[int] = []
    row_at = None
    while end < len(lines) and lines[end].lstrip().startswith("|"):
        cells = _cells(lines[end])
        if len(cells) >= 3 and cells[2].strip("`") == file:
            row_at = end
        if cells and cells[0].isdigit():
            numbers.append(int(cells[0]))
        end += 1
    if row_at is not None:
        cells = _cells(lines[row_at])
        cells += [""] * (len(PLAN_HEADER) - len(cells))
        cells[1:6] = [cells[1] or type_, shown_file, f"`{model}`", mode, status]
        lines[row_at] = "| " + " | ".join(cells) + " |"
    else:
        lines.insert(end, f"| {max(numbers, default=0) + 1} | {type_} | {shown_file} | `{model}` | {mode} | {status} |")
    return newline.join(lines) + newline


MAX_NAME_BYTES = 255  # one file or folder name (ext4, APFS, NTFS)
MAX_PATH_BYTES = 4000  # a whole path, under Linux's PATH_MAX of 4096 with room for the project root


def check_name_lengths(text: str) -> None:
    """Refuse names the filesystem would refuse later (after a paid job), with the limit in the message."""
    for part in text.replace("\\", "/").split("/"):
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > MAX_NAME_BYTES:
            raise InputFileError(f"The name {part[:40]!r}... is {size} bytes long; a file or folder name may be at most "
                                 f"{MAX_NAME_BYTES} bytes. Use a shorter name.")
    if len(text.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise InputFileError(f"The path is {len(text)} characters long; keep it under {MAX_PATH_BYTES} bytes.")


def contained(root: Path, path: Path) -> bool:
    """Whether `path` (followed through links) is inside `root` and not hidden: for readers that walk folders."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return False
    base = root.resolve()
    if not resolved.is_relative_to(base):
        return False
    return not any(part.startswith(".") for part in resolved.relative_to(base).parts)


def _escaping_link(path: Path, roots: tuple[Path, ...]) -> str:
    """The first component of `path` that is a symbolic link, for messages."""
    root = next(r for r in roots if path == r or path.is_relative_to(r))
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return current.relative_to(root).as_posix()
    return path.relative_to(root).as_posix()


def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two files hold the same bytes (sizes first, then a streamed comparison)."""
    try:
        if a.stat().st_size != b.stat().st_size or not b.is_file():
            return False
        with a.open("rb") as fa, b.open("rb") as fb:
            while True:
                ca, cb = fa.read(1 << 20), fb.read(1 << 20)
                if ca != cb:
                    return False
                if not ca:
                    return True
    except OSError:
        return False
