"""Project settings: a small `aivp.toml` at the project root that every call reads.

    aspect_ratio = "9:16"           # applied to every generation that does not say otherwise
    negative_prompt = "blurry, distorted hands"
    tier = "standard"               # fast | standard | premium, for model choice
    consistency = "medium"          # none | weak | medium | strong, for model choice
    budget_usd = 25                 # used when AIVP_BUDGET_USD is not set

    [models]                        # default model per task (catalog ids or aliases)
    t2i = "seedream"
    edit = "nano-banana-pro"
    i2v = "seedance-1.5-pro"

Every tool call may override any of these. The file is read again when it changes, so edits take
effect without a restart; a mistake in it is an error naming the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog.schema import TASKS
from .errors import ConfigError
from .project import contained

FILE = "aivp.toml"
TIERS = ("fast", "standard", "premium")
CONSISTENCY = ("none", "weak", "medium", "strong")


@dataclass(frozen=True)
class ProjectConfig:
    aspect_ratio: str | None = None
    negative_prompt: str | None = None
    tier: str | None = None
    consistency: str | None = None
    budget_usd: float | None = None
    models: dict[str, str] = field(default_factory=dict)


_cache: dict[Path, tuple[float, ProjectConfig]] = {}


def load_config(root: Path) -> ProjectConfig:
    path = root / FILE
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return ProjectConfig()
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    if not contained(root, path):
        raise ConfigError(f"{FILE} is a symbolic link that points outside the project; aivp does not read it. "
                          "Replace the link with the file itself.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{FILE} is not valid TOML ({exc}); fix it or delete it.") from None
    config = _parse(data)
    _cache[path] = (mtime, config)
    return config


def _parse(data: dict[str, Any]) -> ProjectConfig:
    known = {"aspect_ratio", "negative_prompt", "tier", "consistency", "budget_usd", "models"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{FILE} has unknown keys {sorted(unknown)}; it takes {', '.join(sorted(known))}.")

    def text(key: str, choices: tuple[str, ...] | None = None) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{FILE}: {key} must be text.")
        if choices and value not in choices:
            raise ConfigError(f"{FILE}: {key} = {value!r}; use one of {', '.join(choices)}.")
        return value.strip()

    budget = data.get("budget_usd")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float) or budget < 0):
        raise ConfigError(f"{FILE}: budget_usd must be a number of dollars, 0 or more.")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"{FILE}: [models] must be a table of task = model.")
    bad = [k for k in models if k not in TASKS]
    if bad:
        raise ConfigError(f"{FILE}: [models] has unknown tasks {bad}; tasks are {', '.join(TASKS)}.")
    from .catalog import resolve

    for task, name in models.items():
        if not isinstance(name, str) or (name != "fal" and not _known(resolve, name)):
            raise ConfigError(f"{FILE}: [models] {task} = {name!r} is not a catalog model; see `aivp models`.")
    return ProjectConfig(aspect_ratio=text("aspect_ratio"), negative_prompt=text("negative_prompt"),
                         tier=text("tier", TIERS), consistency=text("consistency", CONSISTENCY),
                         budget_usd=float(budget) if budget is not None else None, models=dict(models))


def _known(resolve: Any, name: str) -> bool:
    try:
        resolve(name)
    except KeyError:
        return False
    return True
