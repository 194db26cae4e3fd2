"""aivp as an OAuth 2.1 resource server: RFC 9728 metadata, 401/403 challenges and JWT checks, against a local
issuer whose keys the tests make (`LocalIssuer` in conftest: OpenID metadata and a JWKS on 127.0.0.1)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from mcp.shared.exceptions import MCPError

from aivp.http.auth import JwtTokens, StaticTokens, scopes_of
from aivp.settings import Secret

from .conftest import LocalIssuer, http_client, http_server, make_settings

pytestmark = pytest.mark.anyio


def _list_tools() -> dict[str, Any]:  # a 2026-07-28 request: no handshake needed
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}


def _call(name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": arguments, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name,
               "Accept": "application/json, text/event-stream"}
    return body, headers


MODERN = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list", "Accept": "application/json, text/event-stream"}


def oauth(project: Path, sandbox: Any, issuer: LocalIssuer) -> Any:
    """AIVP_OAUTH_ISSUER = the local issuer; http_server makes AIVP_PUBLIC_URL its own /mcp once it has a port."""
    return make_settings(project, sandbox, oauth_issuer=issuer.url)


async def test_metadata_and_the_401_that_points_to_it(project: Path, sandbox: Any, issuer: LocalIssuer) -> None:
    async with http_server(oauth(project, sandbox, issuer)) as url:
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient() as h:
            r = await h.post(url, json=_list_tools(), headers=MODERN)
            assert r.status_code == 401
            www = r.headers["www-authenticate"]
            link = f"{base}/.well-known/oauth-protected-resource/mcp"
            assert www.startswith("Bearer ") and f'resource_metadata="{link}"' in www
            assert 'scope="aivp:read aivp:generate"' in www
            meta = await h.get(link)
            assert meta.status_code == 200 and meta.headers["content-type"].startswith("application/json")
            doc = meta.json()
            assert doc["resource"] == url  # RFC 9728: the resource identifier, which tokens must name as audience
            assert [s.rstrip("/") for s in doc["authorization_servers"]] == [issuer.url]
            assert doc["scopes_supported"] == ["aivp:read", "aivp:generate"]
            assert doc["bearer_methods_supported"] == ["header"] and doc["resource_name"] == "aivp"
            cors = await h.options(link, headers={"Origin": "https://claude.ai", "Access-Control-Request-Method": "GET"})
            assert cors.status_code in (200, 204)


async def test_bad_tokens_are_refused(project: Path, sandbox: Any, issuer: LocalIssuer) -> None:
    issuer.add_key("stranger", publish=False)
    async with http_server(oauth(project, sandbox, issuer)) as url:
        good = issuer.token(url)
        forged_payload = jwt.decode(good, options={"verify_signature": False})
        bad = {
            "wrong audience": issuer.token("https://other.example/mcp"),
            "expired": issuer.token(url, expires_in=-120),
            "bad signature": issuer.token(url, signer="stranger"),  # names k1, signed by another key
            "unknown kid": issuer.token(url, kid="stranger"),
            "wrong issuer": issuer.token(url, issuer="https://evil.example"),
            "alg none": jwt.encode(forged_payload, None, algorithm="none"),  # type: ignore[arg-type]
            "HS256 with the public key": jwt.encode(forged_payload, "k1-as-a-secret-0123456789abcdef0123",
                                                    algorithm="HS256", headers={"kid": "k1"}),
            "no subject": jwt.encode({k: v for k, v in forged_payload.items() if k != "sub"}, issuer.keys["k1"],
                                     algorithm="RS256", headers={"kid": "k1"}),
            "not a JWT": "just-some-opaque-token",
        }
        async with httpx2.AsyncClient() as h:
            for why, token in bad.items():
                r = await h.post(url, json=_list_tools(), headers={**MODERN, "Authorization": f"Bearer {token}"})
                assert r.status_code == 401, why
            ok = await h.post(url, json=_list_tools(), headers={**MODERN, "Authorization": f"Bearer {good}"})
            assert ok.status_code == 200, ok.text


async def test_read_scope_lists_but_cannot_generate(project: Path, sandbox: Any, issuer: LocalIssuer) -> None:
    async with http_server(oauth(project, sandbox, issuer)) as url:
        reader = issuer.token(url, sub="viewer", scope="aivp:read")
        none = issuer.token(url, sub="nobody", scope="profile email")
        async with httpx2.AsyncClient() as h:
            body, headers = _call("generate_image", {"prompt": "a forbidden frame"})
            r = await h.post(url, json=body, headers={**headers, "Authorization": f"Bearer {reader}"})
            assert r.status_code == 403
            www = r.headers["www-authenticate"]
            assert 'error="insufficient_scope"' in www and 'scope="aivp:generate"' in www and "resource_metadata=" in www
            assert r.json()["scope"] == "aivp:generate" and "generate_image" in r.json()["error_description"]
            unscoped = await h.post(url, json=_list_tools(), headers={**MODERN, "Authorization": f"Bearer {none}"})
            assert unscoped.status_code == 403 and 'scope="aivp:read"' in unscoped.headers["www-authenticate"]
            put = await h.put(url.replace("/mcp", "/files/image/x.png"), content=b"x",
                              headers={"Authorization": f"Bearer {reader}"})
            assert put.status_code == 403 and 'scope="aivp:generate"' in put.headers["www-authenticate"]
            assert not (project / "image/x.png").exists()
        for mode in ("auto", "legacy"):
            async with http_client(url, reader, mode=mode) as c:
                tools = {t.name for t in (await c.list_tools()).tools}
                assert "generate_image" in tools  # listed; refused when called
                assert not (await c.call_tool("queue_status", {})).is_error
                assert not (await c.call_tool("search_models", {"task": "t2i"})).is_error
                with pytest.raises((MCPError, BaseExceptionGroup)):
                    await c.call_tool("generate_image", {"prompt": "still forbidden"})
    assert sandbox.submission_count() == 0


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_good_token_generates_and_its_subject_is_recorded(project: Path, sandbox: Any, issuer: LocalIssuer,
                                                                  mode: str) -> None:
    async with http_server(oauth(project, sandbox, issuer)) as url:
        async with http_client(url, issuer.token(url, sub="user|42"), mode=mode) as c:
            r = await c.call_tool("generate_image", {"prompt": "an OAuth frame", "output": "image/frames/shot-09-ff.png"})
            assert not r.is_error, r.content[0].text
            assert r.structured_content["started_by"] == "user|42"
            mine = (await c.call_tool("queue_status", {"started_by": "me"})).structured_content["recent"]
            assert [j["started_by"] for j in mine] == ["user|42"]
    assert json.loads((project / "image/log/shot-09-ff.json").read_text())["started_by"] == "user|42"


async def test_static_tokens_and_oauth_side_by_side(project: Path, sandbox: Any, issuer: LocalIssuer) -> None:
    settings = replace(oauth(project, sandbox, issuer), http_tokens={"ci": Secret("ci-token-0123456789abcdef")})
    async with http_server(settings) as url:
        for token in ("ci-token-0123456789abcdef", issuer.token(url)):
            async with http_client(url, token) as c:
                assert (await c.call_tool("queue_status", {})).structured_content["recent"] == []


async def test_keys_are_cached_and_fetched_again_for_an_unknown_kid(issuer: LocalIssuer) -> None:
    audience = "http://127.0.0.1:1/mcp"
    verifier = JwtTokens(issuer.url, audience, refresh_s=0)  # JWKS URL found in the issuer's metadata
    before = issuer.fetches
    assert (await verifier.verify_token(issuer.token(audience))) is not None
    assert (await verifier.verify_token(issuer.token(audience, sub="again"))) is not None
    assert issuer.fetches - before == 1  # cached
    issuer.add_key("k2")  # the issuer rotates: a token names a key aivp has not seen
    try:
        got = await verifier.verify_token(issuer.token(audience, kid="k2", sub="rotated", scope="aivp:read"))
        assert got is not None and got.subject == "rotated" and got.scopes == ["aivp:read"]
        assert got.expires_at and got.expires_at > time.time() and got.resource == audience
        assert issuer.fetches - before == 2
    finally:
        issuer.published.remove("k2")
    slow = JwtTokens(issuer.url, audience, refresh_s=3600)
    assert (await slow.verify_token(issuer.token(audience))) is not None
    count = issuer.fetches
    for _ in range(5):  # a flood of unknown key ids does not make aivp hammer the issuer
        assert (await slow.verify_token(issuer.token(audience, kid="k2"))) is None
    assert issuer.fetches == count


async def test_an_unreachable_issuer_refuses_tokens(issuer: LocalIssuer) -> None:
    verifier = JwtTokens("http://127.0.0.1:9/", "http://127.0.0.1:1/mcp", timeout_s=2)
    assert (await verifier.verify_token(issuer.token("http://127.0.0.1:1/mcp"))) is None


async def test_static_tokens_name_their_person() -> None:
    tokens = StaticTokens({"alice": Secret("a" * 20), "bob": Secret("b" * 24)})
    got = await tokens.verify_token("b" * 24)
    assert got is not None and got.subject == "bob" and set(got.scopes) == {"aivp:read", "aivp:generate"}
    assert await tokens.verify_token("b" * 23) is None and await tokens.verify_token("") is None


def test_scopes_from_the_usual_claims() -> None:
    assert scopes_of({"scope": "openid aivp:read"}) == ["aivp:read"]
    assert scopes_of({"scp": ["aivp:generate"], "permissions": ["aivp:read", "other"]}) == ["aivp:generate", "aivp:read"]
    assert scopes_of({"scope": 5}) == []


def test_token_settings_are_checked(project: Path) -> None:
    from aivp.errors import ConfigError
    from aivp.settings import Settings

    s = Settings.from_env({"AIVP_HTTP_TOKENS": "alice:" + "x" * 20 + ", bob:" + "y" * 20 + "," + "z" * 30},
                          project_dir=project)
    assert list(s.http_tokens)[:2] == ["alice", "bob"] and list(s.http_tokens)[2].startswith("token-")
    assert "x" * 20 in s.secrets()
    for bad in ("alice:short", "alice:" + "x" * 20 + ",alice:" + "y" * 20, "alice:" + "x" * 20 + ",bob:" + "x" * 20):
        with pytest.raises(ConfigError):
            Settings.from_env({"AIVP_HTTP_TOKENS": bad}, project_dir=project)
    from aivp.http.app import check

    oauth_only = Settings.from_env({"AIVP_OAUTH_ISSUER": "https://auth.example.com"}, project_dir=project)
    with pytest.raises(ConfigError, match="AIVP_PUBLIC_URL"):  # stdio does not care; --http refuses to start
        check(oauth_only, "127.0.0.1")
    for public in ("http://aivp.example.com/mcp", "https://aivp.example.com/"):
        with pytest.raises(ConfigError, match="AIVP_PUBLIC_URL"):
            check(Settings.from_env({"AIVP_OAUTH_ISSUER": "https://auth.example.com", "AIVP_PUBLIC_URL": public},
                                    project_dir=project), "127.0.0.1")
