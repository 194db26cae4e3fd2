"""The review page inside `aivp serve --http` (issues 12/13): under /review/, behind the server's auth, with a
one-time link and a session cookie for the browser (an <img> or <video> sends no bearer header). Real uvicorn on
127.0.0.1, the app wired as the CLI wires it (`cli.review_mount`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from .conftest import TOKENS, LocalIssuer, http_client, http_server, make_settings, png

pytestmark = pytest.mark.anyio
ALICE = TOKENS["alice"]
BEARER = {"Authorization": f"Bearer {ALICE}"}
LIST = {"name": "list_candidates", "arguments": {"shot": 1}}


async def test_the_page_needs_a_token_and_gives_the_browser_a_cookie(project: Path, sandbox: Any) -> None:
    async with http_server(make_settings(project, sandbox), tokens=TOKENS, review=True) as url:
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient() as anon:
            assert (await anon.get(f"{base}/review/")).status_code == 401
            assert (await anon.post(f"{base}/review/api/call", json=LIST)).status_code == 401
            assert (await anon.get(f"{base}/review/?ticket=made-up")).status_code == 401
            bad = await anon.get(f"{base}/review/", headers={"Authorization": "Bearer wrong"})
            assert bad.status_code in (400, 401) and "data-transport" not in bad.text
        async with httpx2.AsyncClient() as agent:  # a client that can send the header
            page = await agent.get(f"{base}/review/", headers=BEARER)
            assert page.status_code == 200 and 'data-transport="http"' in page.text
            assert "default-src 'none'" in page.headers["content-security-policy"]
            cookie = page.headers["set-cookie"]
            assert cookie.startswith("aivp_review=") and "HttpOnly" in cookie and "Path=/review/" in cookie
            assert "samesite=lax" in cookie.lower() and ALICE not in cookie
            call = await agent.post(f"{base}/review/api/call", json=LIST, headers=BEARER)
            assert call.status_code == 200 and call.json()["structuredContent"]["shot"] == 1
            # the cookie alone now does (the page's own fetches, images and videos)
            assert (await agent.post(f"{base}/review/api/call", json=LIST)).status_code == 200
            foreign = await agent.post(f"{base}/review/api/call", json=LIST, headers={"origin": "https://evil.example"})
            assert foreign.status_code == 403
            assert (await agent.post(f"{base}/review/api/call", json={"name": "edit_image", "arguments": {}})
                    ).status_code == 403  # only the review's tools
            # the cookie is the review's: it opens neither /mcp nor /files/
            assert (await agent.post(url, json={})).status_code == 401
            made = await agent.post(f"{base}/review/api/call", json={"name": "generate_candidates", "arguments": {
                "shot": 1, "count": 1, "prompt": "from the review page", "wait_s": 20}})
            assert made.status_code == 200 and not made.json().get("isError"), made.text
        async with http_client(url, ALICE) as c:  # the page's own aivp server shares the project's ledger
            recent = (await c.call_tool("queue_status", {})).structured_content["recent"]
        assert recent[0]["status"] == "completed" and recent[0]["started_by"] == "alice"  # who opened the page
        assert sandbox.submission_count() == 1


async def test_a_one_time_link_opens_the_page_in_a_browser(project: Path, sandbox: Any) -> None:
    async with http_server(make_settings(project, sandbox), tokens=TOKENS, review=True) as url:
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient() as cli:
            assert (await cli.get(f"{base}/review/link")).status_code == 401
            got = (await cli.get(f"{base}/review/link", headers=BEARER)).json()
        assert got["url"].startswith(f"{base}/review/?ticket=") and 0 < got["expires_in_s"] <= 600
        async with httpx2.AsyncClient() as browser:
            first = await browser.get(got["url"])
            assert first.status_code == 303 and first.headers["location"] == "/review/"
            page = await browser.get(f"{base}/review/")
            assert page.status_code == 200 and 'data-transport="http"' in page.text
            call = await browser.post(f"{base}/review/api/call", json=LIST)
            assert call.status_code == 200 and call.json()["structuredContent"]["shot"] == 1
            read = await browser.post(f"{base}/review/api/read", json={"uri": "aivp://review/shots"})
            assert read.status_code == 200, read.text
            assert (await browser.post(
                f"{base}/review/api/read", json={"uri": "aivp://skill"})).status_code == 403
        async with httpx2.AsyncClient() as other:  # the link works once
            again = await other.get(got["url"])
            assert again.status_code == 401 and "/review/link" in again.text


async def test_files_are_ranged_and_contained(project: Path, sandbox: Any) -> None:
    png(project / "image/frames/shot-01-ff.png")
    png(project.parent / "outside.png")
    (project / ".env").write_text("FAL_KEY=secret\n")
    (project / "notes.html").write_text("<script>alert(1)</script>")
    async with http_server(make_settings(project, sandbox), tokens=TOKENS, review=True) as url:
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient() as browser:
            assert (await browser.get(f"{base}/review/files/image/frames/shot-01-ff.png")).status_code == 401
            await browser.get(f"{base}/review/", headers=BEARER)  # the cookie
            whole = await browser.get(f"{base}/review/files/image/frames/shot-01-ff.png")
            assert whole.status_code == 200 and whole.headers["content-type"] == "image/png"
            part = await browser.get(f"{base}/review/files/image/frames/shot-01-ff.png", headers={"range": "bytes=0-99"})
            assert part.status_code == 206 and part.content == whole.content[:100]
            assert part.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"
            for bad in (".env", ".aivp/ledger.sqlite3", "..%2Foutside.png", "%2Fetc%2Fpasswd", "image/.hidden.png"):
                r = await browser.get(f"{base}/review/files/{bad}")
                assert r.status_code == 404 and b"secret" not in r.content, bad
            page = await browser.get(f"{base}/review/files/notes.html")  # a project file never runs as a page here
            assert page.headers["content-disposition"].startswith("attachment")
            assert page.headers["x-content-type-options"] == "nosniff" and "sandbox" in page.headers[
                "content-security-policy"]


async def test_a_read_only_token_does_not_open_the_page(project: Path, sandbox: Any, issuer: LocalIssuer) -> None:
    # the page can start paid jobs, so it needs aivp:generate (and hands out no link or cookie for less)
    async with http_server(make_settings(project, sandbox, oauth_issuer=issuer.url), review=True) as url:
        base = url.removesuffix("/mcp")
        reader = {"Authorization": f"Bearer {issuer.token(url, sub='viewer', scope='aivp:read')}"}
        writer = {"Authorization": f"Bearer {issuer.token(url, sub='maker', scope='aivp:read aivp:generate')}"}
        async with httpx2.AsyncClient() as h:
            page = await h.get(f"{base}/review/", headers=reader)
            assert page.status_code == 403 and "set-cookie" not in page.headers
            assert 'scope="aivp:generate"' in page.headers["www-authenticate"]
            assert (await h.get(f"{base}/review/link", headers=reader)).status_code == 403
            assert (await h.get(f"{base}/review/", headers=writer)).status_code == 200


async def test_without_auth_on_loopback_the_page_is_open(project: Path, sandbox: Any) -> None:
    async with http_server(make_settings(project, sandbox), review=True) as url:
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient() as h:
            page = await h.get(f"{base}/review/")
            assert page.status_code == 200 and "set-cookie" not in page.headers
            assert (await h.get(f"{base}/review/link")).json()["url"] == f"{base}/review/"
            assert (await h.post(f"{base}/review/api/call", json=LIST)).status_code == 200
            assert (await h.post(f"{base}/review/api/call", json=LIST, headers={"origin": "https://evil.example"})
                    ).status_code == 403
