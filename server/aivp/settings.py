"""All configuration in one place.

Precedence, highest first: explicit overrides (command-line flags, tests) > the process
environment > `<project>/.env` > `~/.aivp/.env` (or `$AIVP_HOME/.env`) > defaults. The `.env`
files are parsed as data by python-dotenv and never executed. Keys are wrapped in `Secret`, which
never prints its value; `redact()` scrubs every known secret from any text as defence in depth.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import ConfigError, MissingKeyError

DEFAULT_FAL_QUEUE_URL = "https://queue.fal.run"
DEFAULT_FAL_REST_URL = "https://rest.fal.ai"
DEFAULT_FAL_CDN_URL = "https://v3.fal.media"
DEFAULT_REPLICATE_URL = "https://api.replicate.com"
DEFAULT_ARK_URL = "https://ark.ap-southeast.bytepluses.com/api/v3"

# Every variable aivp reads, with what it does; README's settings table is checked against this.
VARIABLES: dict[str, str] = {
    "FAL_KEY": "fal.ai API key (`key_id:key_secret`). Also accepted: FAL_API_KEY, or FAL_KEY_ID + FAL_KEY_SECRET.",
    "FAL_API_KEY": "Alternative name for FAL_KEY.",
    "FAL_KEY_ID": "With FAL_KEY_SECRET, an alternative to FAL_KEY.",
    "FAL_KEY_SECRET": "With FAL_KEY_ID, an alternative to FAL_KEY.",
    "REPLICATE_API_TOKEN": "Replicate API token (for the FLUX and IP-Adapter models served there).",
    "ARK_API_KEY": "BytePlus ModelArk API key (Seedream 4.5). Also accepted: BYTEPLUS_API_KEY.",
    "BYTEPLUS_API_KEY": "Alternative name for ARK_API_KEY.",
    "AIVP_PROVIDERS": "Provider preference for models several providers serve, e.g. byteplus,fal,replicate (default: the ones with a key, in catalog order).",
    "AIVP_IMAGE_MODEL": "Image model used when a call names none (any catalog name or alias; 'fal' = fal routing). Default: seedream on BytePlus when ARK_API_KEY is set, else nano-banana-pro.",
    "AIVP_PROJECT_DIR": "Project root (default: --project, else the working directory).",
    "AIVP_EXTRA_ROOTS": "More folders aivp may read inputs from, separated by the OS path separator.",
    "AIVP_BUDGET_USD": "Spending cap for this project; a submit that would pass it is refused before it is sent.",
    "AIVP_WAIT_S": "Default seconds a generation call waits before returning a job handle (default 45).",
    "AIVP_FAL_QUEUE_URL": f"fal queue base URL (default {DEFAULT_FAL_QUEUE_URL}).",
    "AIVP_FAL_REST_URL": f"fal REST/storage base URL (default {DEFAULT_FAL_REST_URL}).",
    "AIVP_FAL_CDN_URL": f"fal CDN upload base URL (default {DEFAULT_FAL_CDN_URL}).",
    "AIVP_REPLICATE_URL": f"Replicate API base URL (default {DEFAULT_REPLICATE_URL}).",
    "AIVP_ARK_URL": f"BytePlus ModelArk base URL (default {DEFAULT_ARK_URL}).",
    "AIVP_UPLOAD_MULTIPART_BYTES": "Uploads above this size use multipart (default 100 MiB).",
    "AIVP_UPLOAD_PART_BYTES": "Multipart chunk size (default 10 MiB).",
    "AIVP_MAX_UPLOAD_MB": "Largest local file aivp will upload (default 1024).",
    "AIVP_MAX_PARALLEL_DOWNLOADS": "Jobs downloading and checking their outputs at once; submits are never held back (default 8).",
    "AIVP_LOG_LEVEL": "Log level on stderr: DEBUG, INFO, WARNING (default), ERROR.",
    "AIVP_HOME": "Folder of the user-wide .env (default ~/.aivp).",
}


class Secret:
    """A credential that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # parses as data; nothing is executed

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _float(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to a number such as 25 or unset it.") from None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _float(env, name, float(default))
    assert value is not None
    return int(value)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one server process (one project)."""

    project_dir: Path
    fal_key: Secret | None = None
    replicate_token: Secret | None = None
    ark_key: Secret | None = None
    providers: tuple[str, ...] = ()  # preference order for multi-provider models; () = by key presence
    image_model: str | None = None  # AIVP_IMAGE_MODEL: the image default when a call names no model
    extra_roots: tuple[Path, ...] = ()
    budget_usd: float | None = None
    wait_s: float = 45.0
    fal_queue_url: str = DEFAULT_FAL_QUEUE_URL
    fal_rest_url: str = DEFAULT_FAL_REST_URL
    fal_cdn_url: str = DEFAULT_FAL_CDN_URL
    replicate_url: str = DEFAULT_REPLICATE_URL
    ark_url: str = DEFAULT_ARK_URL
    multipart_threshold: int = 100 * 1024 * 1024
    part_size: int = 10 * 1024 * 1024
    max_upload_bytes: int = 1024 * 1024 * 1024
    max_parallel_downloads: int = 8
    log_level: str = "WARNING"
    # HTTP behaviour; tests shrink these
    retry_attempts: int = 6
    retry_base_s: float = 0.5
    retry_cap_s: float = 30.0
    poll_initial_s: float = 0.25
    poll_max_s: float = 5.0
    sse_idle_s: float = 20.0
    connect_timeout_s: float = 15.0
    read_timeout_s: float = 120.0
    env_files: tuple[Path, ...] = field(default=(), compare=False)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        project_dir: str | Path | None = None,
        **overrides: object,
    ) -> Settings:
        """Build settings from an environment mapping (default os.environ) and the .env files."""
        env_in = dict(os.environ if environ is None else environ)
        home = Path(env_in.get("AIVP_HOME") or Path.home() / ".aivp").expanduser()
        root_raw = project_dir or env_in.get("AIVP_PROJECT_DIR") or os.getcwd()
        root = Path(root_raw).expanduser().resolve()
        files = (root / ".env", home / ".env")
        env: dict[str, str] = {}
        for f in reversed(files):  # later (closer, then process env) wins
            env.update(_read_env_file(f))
        env.update(env_in)

        extra = tuple(
            Path(p).expanduser().resolve() for p in env.get("AIVP_EXTRA_ROOTS", "").split(os.pathsep) if p.strip()
        )
        level = env.get("AIVP_LOG_LEVEL", "WARNING").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"AIVP_LOG_LEVEL={level!r} is not a level; use DEBUG, INFO, WARNING or ERROR.")
        settings = cls(
            project_dir=root,
            fal_key=_fal_key(env),
            replicate_token=_first_secret(env, "REPLICATE_API_TOKEN"),
            ark_key=_first_secret(env, "ARK_API_KEY", "BYTEPLUS_API_KEY"),
            providers=_provider_order(env.get("AIVP_PROVIDERS", "")),
            image_model=env.get("AIVP_IMAGE_MODEL", "").strip() or None,
            extra_roots=extra,
            budget_usd=_float(env, "AIVP_BUDGET_USD", None),
            wait_s=_float(env, "AIVP_WAIT_S", 45.0) or 0.0,
            fal_queue_url=env.get("AIVP_FAL_QUEUE_URL", DEFAULT_FAL_QUEUE_URL).rstrip("/"),
            fal_rest_url=env.get("AIVP_FAL_REST_URL", DEFAULT_FAL_REST_URL).rstrip("/"),
            fal_cdn_url=env.get("AIVP_FAL_CDN_URL", DEFAULT_FAL_CDN_URL).rstrip("/"),
            replicate_url=env.get("AIVP_REPLICATE_URL", DEFAULT_REPLICATE_URL).rstrip("/"),
            ark_url=env.get("AIVP_ARK_URL", DEFAULT_ARK_URL).rstrip("/"),
            multipart_threshold=_int(env, "AIVP_UPLOAD_MULTIPART_BYTES", 100 * 1024 * 1024),
            part_size=_int(env, "AIVP_UPLOAD_PART_BYTES", 10 * 1024 * 1024),
            max_upload_bytes=_int(env, "AIVP_MAX_UPLOAD_MB", 1024) * 1024 * 1024,
            max_parallel_downloads=max(1, _int(env, "AIVP_MAX_PARALLEL_DOWNLOADS", 8)),
            log_level=level,
            env_files=tuple(f for f in files if f.is_file()),
        )
        if settings.budget_usd is not None and settings.budget_usd < 0:
            raise ConfigError("AIVP_BUDGET_USD must be zero or more.")
        for url_name in ("fal_queue_url", "fal_rest_url", "fal_cdn_url", "replicate_url", "ark_url"):
            url = getattr(settings, url_name)
            if not url.startswith(("https://", "http://")):
                raise ConfigError(f"AIVP_{url_name.upper()}={url!r} must be an http(s) URL.")
        return replace(settings, **overrides) if overrides else settings

    def key_for(self, provider: str) -> Secret | None:
        return {"fal": self.fal_key, "replicate": self.replicate_token, "byteplus": self.ark_key}.get(provider)

    def require_key(self, provider: str) -> Secret:
        """The provider's key, or a MissingKeyError that says how to set it."""
        key = self.key_for(provider)
        if key is None:
            name, where = KEY_HELP[provider]
            raise MissingKeyError(
                f"{name} is not set. Get a key at {where} and set {name} in the environment of the MCP server "
                "(or in a .env file in the project root or ~/.aivp/.env), then restart the server. Searching "
                "models and reading docs work without a key."
            )
        return key

    def secrets(self) -> list[str]:
        """Every secret value this process holds, for redaction."""
        held = (self.fal_key, self.replicate_token, self.ark_key)
        return [s.get() for s in held if s is not None and s.get()]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())


KEY_HELP = {
    "fal": ("FAL_KEY", "https://fal.ai/dashboard/keys"),
    "replicate": ("REPLICATE_API_TOKEN", "https://replicate.com/account/api-tokens"),
    "byteplus": ("ARK_API_KEY", "https://console.byteplus.com/ark (API keys)"),
}
KNOWN_PROVIDERS = tuple(KEY_HELP)


def _first_secret(env: Mapping[str, str], *names: str) -> Secret | None:
    for name in names:
        if value := env.get(name, "").strip():
            return Secret(value)
    return None


def _provider_order(raw: str) -> tuple[str, ...]:
    names = tuple(p.strip().lower() for p in raw.replace(";", ",").split(",") if p.strip())
    unknown = [p for p in names if p not in KNOWN_PROVIDERS]
    if unknown:
        raise ConfigError(f"AIVP_PROVIDERS names unknown providers {unknown}; use {', '.join(KNOWN_PROVIDERS)}.")
    return names


def _fal_key(env: Mapping[str, str]) -> Secret | None:
    for name in ("FAL_KEY", "FAL_API_KEY"):
        if value := env.get(name, "").strip():
            return Secret(value)
    key_id, key_secret = env.get("FAL_KEY_ID", "").strip(), env.get("FAL_KEY_SECRET", "").strip()
    if key_id and key_secret:
        return Secret(f"{key_id}:{key_secret}")
    return None


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret (and each half of an `id:secret` pair) in text with asterisks."""
    for s in secrets:
        for part in {s, *s.split(":")}:
            if len(part) >= 6:
                text = text.replace(part, "**********")
    return text
