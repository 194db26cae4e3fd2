"""All configuration in one place.

Precedence, highest first: explicit overrides (command-line flags, tests) > the process
environment > `<project>/.env` > `~/.aivp/.env` (or `$AIVP_HOME/.env`) > defaults. The `.env`
files are parsed as data by python-dotenv and never executed. Keys are wrapped in `Secret`, which
never prints its value; `redact()` scrubs every known secret from any text as defence in depth.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, MissingKeyError
from .registry import BUILTIN, PROVIDER_NAMES, key_help

# Every variable aivp reads, with what it does; README's settings table is checked against this.
# The providers' key and base-URL variables come from their specs (providers/__init__.py).
VARIABLES: dict[str, str] = {
    **{name: doc for spec in BUILTIN for name, doc in spec.key_docs.items()},
    "AIVP_PROVIDERS": "Provider preference for models several providers serve, e.g. byteplus,fal,replicate (default: the ones with a key, in catalog order).",
    "AIVP_IMAGE_MODEL": "Image model used when a call names none (any catalog name or alias; 'fal' = fal routing). Default: seedream on BytePlus when ARK_API_KEY is set, else nano-banana-pro.",
    "AIVP_PROJECT_DIR": "Project root (default: --project, else the working directory).",
    "AIVP_SANDBOX": "1: the providers whose base URLs all point at this machine are aivp's sandbox; their jobs are placeholders, cost nothing and never count against a budget (`aivp sandbox` prints it with the URLs).",
    "AIVP_EXTRA_ROOTS": "More folders aivp may read inputs from, separated by the OS path separator.",
    "AIVP_BUDGET_USD": "Spending cap for this project; a submit that would pass it is refused before it is sent.",
    "AIVP_WAIT_S": "Default seconds a generation call waits before returning a job handle (default 45).",
    **{u.env: f"{u.about} (default {u.default})." for spec in BUILTIN for u in spec.urls.values()},
    "AIVP_UPLOAD_MULTIPART_BYTES": "Uploads above this size use multipart (default 100 MiB).",
    "AIVP_UPLOAD_PART_BYTES": "Multipart chunk size (default 10 MiB).",
    "AIVP_MAX_UPLOAD_MB": "Largest local file aivp will upload (default 1024).",
    "AIVP_MAX_PARALLEL_DOWNLOADS": "Jobs downloading and checking their outputs at once; submits are never held back (default 8).",
    "AIVP_LOG_LEVEL": "Log level on stderr: DEBUG, INFO, WARNING (default), ERROR.",
    "AIVP_HOME": "Folder of the user-wide .env (default ~/.aivp).",
    "AIVP_CACHE_DIR": "Where the live model catalog (fal and Replicate schemas and prices) is cached (default ~/.aivp/cache, i.e. $AIVP_HOME/cache).",
    "AIVP_CATALOG_TTL_S": "Seconds a cached live catalog answer is used before it is asked for again (default 86400, one day).",
    "AIVP_CONFIRM_ABOVE_USD": "Ask the user (elicitation) before a call estimated above this many USD (default 1.00; 0 = before every paid call; negative = never).",
    "AIVP_SESSION_BUDGET_USD": "Also ask before a call that would take this caller's spend since the server started past this many USD (default: no session limit).",
    "AIVP_HTTP_TOKENS": "aivp serve --http: static bearer tokens, comma-separated, one per person as name:token (at least 16 characters each).",
    "AIVP_OAUTH_ISSUER": "aivp serve --http: the OAuth authorization server whose JWT access tokens are accepted (its issuer URL).",
    "AIVP_OAUTH_JWKS_URL": "aivp serve --http: where the issuer's signing keys are (default: jwks_uri from the issuer's metadata).",
    "AIVP_PUBLIC_URL": "aivp serve --http: this server's public MCP URL, e.g. https://aivp.example.com/mcp (the OAuth resource and token audience; the base of download links).",
    "AIVP_ALLOWED_HOSTS": "aivp serve --http: more Host header values to accept, comma-separated (host or host:port; host:* for any port). Loopback is always allowed.",
    "AIVP_ALLOWED_ORIGINS": "aivp serve --http: more browser Origin values to accept on /mcp, comma-separated (e.g. https://app.example.com).",
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


def _default_urls() -> dict[str, dict[str, str]]:
    return {spec.name: {role: u.default for role, u in spec.urls.items()} for spec in BUILTIN}


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one server process (one project).

    Provider keys and base URLs are mappings filled from the providers' specs, so a new provider
    needs no field here: `key_for(name)` and `url(name, role)` read them.
    """

    project_dir: Path
    # provider name -> its key; a provider without a key is absent. hash=False: a dict cannot be hashed.
    keys: Mapping[str, Secret] = field(default_factory=dict, hash=False)
    # provider name -> role ("queue", "api" ...) -> base URL without a trailing slash
    urls: Mapping[str, Mapping[str, str]] = field(default_factory=_default_urls, hash=False)
    providers: tuple[str, ...] = ()  # preference order for multi-provider models; () = by key presence
    image_model: str | None = None  # AIVP_IMAGE_MODEL: the image default when a call names no model
    extra_roots: tuple[Path, ...] = ()
    budget_usd: float | None = None
    wait_s: float = 45.0
    multipart_threshold: int = 100 * 1024 * 1024
    part_size: int = 10 * 1024 * 1024
    max_upload_bytes: int = 1024 * 1024 * 1024
    max_parallel_downloads: int = 8
    log_level: str = "WARNING"
    # the live catalog: where fal/Replicate schemas and prices are cached, for how long, and how long
    # one platform request may take before aivp falls back to the cache
    cache_dir: Path | None = None  # None: the live catalog keeps nothing on disk
    catalog_ttl_s: float = 86400.0
    catalog_timeout_s: float = 10.0
    # spend consent (tools/consent.py): ask above this estimate (negative: never), and past this session spend
    confirm_above_usd: float = 1.0
    session_budget_usd: float | None = None
    # `aivp serve --http` (aivp.http): who may connect, and how this server is reached
    http_tokens: Mapping[str, Secret] = field(default_factory=dict, hash=False)  # person -> static bearer token
    oauth_issuer: str | None = None
    oauth_jwks_url: str | None = None
    public_url: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # set by `aivp serve --http` at start: download links in results (base URL, per-process signing key)
    download_base: str | None = None
    link_key: Secret | None = None
    # HTTP behaviour; tests shrink these
    retry_attempts: int = 6
    retry_base_s: float = 0.5
    retry_cap_s: float = 30.0
    poll_initial_s: float = 0.25
    poll_max_s: float = 5.0
    sse_idle_s: float = 20.0
    connect_timeout_s: float = 15.0
    read_timeout_s: float = 120.0
    # a lost submit the provider does not list this long after it left was never taken (listings lag a little)
    settle_after_s: float = 30.0
    # providers that are sandboxes (their jobs cost nothing and never count against a budget); None: with
    # AIVP_SANDBOX=1 (the sandbox's own variables say it), every provider whose base URLs all point at this
    # machine. Loopback alone is not enough: a local proxy to the real service is loopback too, and its jobs
    # are paid. Tests set () to treat the sandbox as a paid provider.
    sandboxes: tuple[str, ...] | None = None
    sandbox_declared: bool = False
    env_files: tuple[Path, ...] = field(default=(), compare=False)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        project_dir: str | Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from an environment mapping (default os.environ) and the .env files.

        `overrides` replace fields of the result (command-line flags, tests), e.g. `keys={"fal": Secret(...)}`.
        """
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
            keys={spec.name: Secret(key) for spec in BUILTIN if (key := spec.read_key(env))},
            urls={spec.name: {role: _url(env, u.env, u.default) for role, u in spec.urls.items()} for spec in BUILTIN},
            providers=_provider_order(env.get("AIVP_PROVIDERS", "")),
            image_model=env.get("AIVP_IMAGE_MODEL", "").strip() or None,
            extra_roots=extra,
            budget_usd=_float(env, "AIVP_BUDGET_USD", None),
            wait_s=_float(env, "AIVP_WAIT_S", 45.0) or 0.0,
            multipart_threshold=_int(env, "AIVP_UPLOAD_MULTIPART_BYTES", 100 * 1024 * 1024),
            part_size=_int(env, "AIVP_UPLOAD_PART_BYTES", 10 * 1024 * 1024),
            max_upload_bytes=_int(env, "AIVP_MAX_UPLOAD_MB", 1024) * 1024 * 1024,
            max_parallel_downloads=max(1, _int(env, "AIVP_MAX_PARALLEL_DOWNLOADS", 8)),
            log_level=level,
            cache_dir=Path(env.get("AIVP_CACHE_DIR") or home / "cache").expanduser(),
            catalog_ttl_s=max(0.0, _float(env, "AIVP_CATALOG_TTL_S", 86400.0) or 0.0),
            confirm_above_usd=_float(env, "AIVP_CONFIRM_ABOVE_USD", 1.0) or 0.0,
            session_budget_usd=_float(env, "AIVP_SESSION_BUDGET_USD", None),
            http_tokens=_tokens(env.get("AIVP_HTTP_TOKENS", "")),
            oauth_issuer=_opt_url(env, "AIVP_OAUTH_ISSUER"),
            oauth_jwks_url=_opt_url(env, "AIVP_OAUTH_JWKS_URL"),
            public_url=_opt_url(env, "AIVP_PUBLIC_URL"),
            allowed_hosts=_list(env, "AIVP_ALLOWED_HOSTS"),
            allowed_origins=_list(env, "AIVP_ALLOWED_ORIGINS"),
            sandbox_declared=env.get("AIVP_SANDBOX", "").strip().lower() in ("1", "true", "yes", "on"),
            env_files=tuple(f for f in files if f.is_file()),
        )
        if settings.budget_usd is not None and settings.budget_usd < 0:
            raise ConfigError("AIVP_BUDGET_USD must be zero or more.")
        if settings.session_budget_usd is not None and settings.session_budget_usd < 0:
            raise ConfigError("AIVP_SESSION_BUDGET_USD must be zero or more (or unset for no session limit).")
        return replace(settings, **overrides) if overrides else settings

    def key_for(self, provider: str) -> Secret | None:
        return self.keys.get(provider)

    def require_key(self, provider: str) -> Secret:
        """The provider's key, or a MissingKeyError that says how to set it."""
        key = self.key_for(provider)
        if key is None:
            name, where = key_help(provider)
            raise MissingKeyError(
                f"{name} is not set. Get a key at {where} and set {name} in the environment of the MCP server "
                "(or in a .env file in the project root or ~/.aivp/.env), then restart the server. Searching "
                "models and reading docs work without a key."
            )
        return key

    def url(self, provider: str, role: str = "api") -> str:
        """A provider's base URL for one role (fal: "queue", "rest", "cdn"; the others: "api")."""
        return self.urls[provider][role]

    def sandboxed(self, provider: str) -> bool:
        """True when this provider's jobs go to a sandbox, not to a paid service."""
        if self.sandboxes is not None:
            return provider in self.sandboxes
        urls = self.urls.get(provider, {}).values()
        return self.sandbox_declared and bool(urls) and all(is_loopback_url(u) for u in urls)

    def secrets(self) -> list[str]:
        """Every secret value this process holds, for redaction."""
        held = [*self.keys.values(), *self.http_tokens.values(), *([self.link_key] if self.link_key else [])]
        return [s.get() for s in held if s.get()]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def __getattr__(self, attr: str) -> Any:
        """Read-only names from before keys and URLs were mappings, derived for every provider:
        `<provider>_key` (fal_key) and `<provider>_<role>_url` (fal_queue_url). New code calls
        `key_for()` and `url()`; these stay because tests and scripts outside the package read them."""
        if attr.startswith("_") or attr in ("keys", "urls"):  # copy/pickle probes, or not initialised yet
            raise AttributeError(attr)
        if attr.endswith("_key") and attr[:-4] in PROVIDER_NAMES:
            return self.key_for(attr[:-4])
        for spec in BUILTIN:
            for role in spec.urls:
                if attr == f"{spec.name}_{role}_url":
                    return self.url(spec.name, role)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    url = env.get(name, default).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"{name}={url!r} must be an http(s) URL.")
    return url


def is_loopback_url(url: str) -> bool:
    """A URL on this machine (localhost, 127.0.0.0/8, ::1): no provider bills a request sent there."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _opt_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    return _url(env, name, raw) if raw else None


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in env.get(name, "").split(",") if x.strip())


_TOKEN_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")


def _tokens(raw: str) -> dict[str, Secret]:
    """AIVP_HTTP_TOKENS: `name:token` entries (a bare token is named by a digest of it), comma-separated."""
    found: dict[str, Secret] = {}
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        name, sep, token = entry.partition(":")
        if not sep or not _TOKEN_NAME.match(name):
            name, token = "token-" + hashlib.sha256(entry.encode()).hexdigest()[:8], entry
        if len(token) < 16 or any(c.isspace() for c in token):
            raise ConfigError(f"AIVP_HTTP_TOKENS: the token for {name!r} is too short or has spaces; use 16 or more "
                              "characters, e.g. from: python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
        if name in found:
            raise ConfigError(f"AIVP_HTTP_TOKENS names {name!r} twice; give each person one name:token entry.")
        if Secret(token) in found.values():
            raise ConfigError(f"AIVP_HTTP_TOKENS: {name!r} reuses another person's token; give each one their own.")
        found[name] = Secret(token)
    return found


def _provider_order(raw: str) -> tuple[str, ...]:
    names = tuple(p.strip().lower() for p in raw.replace(";", ",").split(",") if p.strip())
    unknown = [p for p in names if p not in PROVIDER_NAMES]
    if unknown:
        raise ConfigError(f"AIVP_PROVIDERS names unknown providers {unknown}; use {', '.join(PROVIDER_NAMES)}.")
    return names


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret (and each half of an `id:secret` pair) in text with asterisks."""
    for s in secrets:
        for part in {s, *s.split(":")}:
            if len(part) >= 6:
                text = text.replace(part, "**********")
    return text
