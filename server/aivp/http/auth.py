"""Who may call aivp over HTTP: static bearer tokens, and OAuth 2.1 JWT access tokens (aivp as a resource server).

Both give the SDK an `AccessToken` whose subject is recorded on the jobs it starts. Scopes map to rights:
`aivp:read` lists, searches, reads status and resources; `aivp:generate` also runs everything that spends
or changes the project (`guard.py` enforces it per tool). Static tokens carry both.

JWTs are verified with PyJWT (already installed with mcp, well kept, with the `cryptography` backend):
signature against the issuer's JWKS (fetched with httpx, cached, fetched again when a token names an unknown
key id, at most every `refresh_s`), `iss`, `aud` (= AIVP_PUBLIC_URL), `exp` and `nbf`. Only asymmetric
algorithms are accepted, so a token signed with the public key as an HMAC secret, or `alg: none`, is refused.
aivp never logs or stores a token; a refusal is logged by its reason only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier

from ..settings import Secret

log = logging.getLogger("aivp.http.auth")

READ = "aivp:read"
GENERATE = "aivp:generate"
SCOPES = [READ, GENERATE]
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class StaticTokens(TokenVerifier):
    """AIVP_HTTP_TOKENS: one token per person, compared in constant time (digests, so length leaks nothing)."""

    def __init__(self, tokens: Mapping[str, Secret]) -> None:
        self._digests = [(name, hashlib.sha256(secret.get().encode()).digest()) for name, secret in tokens.items()]

    async def verify_token(self, token: str) -> AccessToken | None:
        given = hashlib.sha256(token.encode()).digest()
        found = None
        for name, digest in self._digests:  # every entry is compared: the time does not depend on which matched
            if hmac.compare_digest(given, digest):
                found = name
        if found is None:
            return None
        return AccessToken(token=token, client_id=f"token:{found}", scopes=list(SCOPES), subject=found)


class JwtTokens(TokenVerifier):
    """OAuth 2.1 access tokens as JWTs from one issuer, for this resource (audience)."""

    def __init__(self, issuer: str, audience: str, jwks_url: str | None = None, *, refresh_s: float = 30.0,
                 leeway_s: float = 30.0, timeout_s: float = 10.0) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.refresh_s = refresh_s
        self.leeway_s = leeway_s
        self.timeout_s = timeout_s
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = -1e18
        self._lock = anyio.Lock()

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            log.info("refused a bearer token: not a JWT")
            return None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            log.info("refused an access token: algorithm %r is not accepted", alg)
            return None
        key = await self._key(kid if isinstance(kid, str) else None)
        if key is None:
            log.info("refused an access token: no signing key %r at the issuer", kid)
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key.key, algorithms=[alg], audience=_variants(self.audience),
                issuer=_variants(self.issuer), leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            log.info("refused an access token: %s", exc)
            return None
        subject = str(claims["sub"])
        client = claims.get("client_id") or claims.get("azp") or subject
        return AccessToken(token=token, client_id=str(client), scopes=scopes_of(claims), expires_at=int(claims["exp"]),
                           resource=self.audience, subject=subject, claims={"iss": claims["iss"]})

    async def _key(self, kid: str | None) -> jwt.PyJWK | None:
        found = self._pick(kid)
        if found is not None:
            return found
        async with self._lock:  # one fetch at a time; a flood of unknown key ids fetches at most every refresh_s
            found = self._pick(kid)
            if found is None and time.monotonic() - self._fetched_at >= self.refresh_s:
                await self.refresh()
                found = self._pick(kid)
        return found

    def _pick(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None  # no kid: only a lone key will do

    async def refresh(self) -> None:
        """Fetch the issuer's keys (finding the JWKS URL in its metadata when it was not given)."""
        self._fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
                url = self.jwks_url or await self._discover(client)
                if url is None:
                    return
                r = await client.get(url)
                r.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(r.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("could not fetch the OAuth issuer's signing keys (%s); tokens are refused until it answers",
                        exc)
            return
        self.jwks_url = url
        self._keys = {k.key_id: k for k in keys}

    async def _discover(self, client: httpx.AsyncClient) -> str | None:
        """jwks_uri from the issuer's OpenID or RFC 8414 metadata (which must name this issuer)."""
        base = self.issuer.rstrip("/")
        parts = urlsplit(base)
        for url in (f"{base}/.well-known/openid-configuration",
                    f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path}"):
            try:
                r = await client.get(url)
                meta = r.json() if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                continue
            if isinstance(meta, dict) and meta.get("issuer") in _variants(self.issuer) and meta.get("jwks_uri"):
                return str(meta["jwks_uri"])
        log.warning("the OAuth issuer %s publishes no metadata naming it with a jwks_uri; set AIVP_OAUTH_JWKS_URL",
                    self.issuer)
        return None


class AnyOf(TokenVerifier):
    """Static tokens and OAuth side by side: the first verifier that accepts the token wins."""

    def __init__(self, *verifiers: TokenVerifier) -> None:
        self.verifiers = verifiers

    async def verify_token(self, token: str) -> AccessToken | None:
        for v in self.verifiers:
            if (found := await v.verify_token(token)) is not None:
                return found
        return None


def scopes_of(claims: Mapping[str, Any]) -> list[str]:
    """aivp's scopes in a token: `scope` (space-separated), `scp` or `permissions` (lists, as some servers send)."""
    found: list[str] = []
    for name in ("scope", "scp", "permissions"):
        value = claims.get(name)
        items = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
        found += [s for s in items if isinstance(s, str) and s in SCOPES and s not in found]
    return found


def _variants(url: str) -> list[str]:
    """An issuer or audience URL with and without its trailing slash (servers differ)."""
    bare = url.rstrip("/")
    return [bare, bare + "/"]
