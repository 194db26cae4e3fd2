"""The review page in a real headless Chromium (Debian's `chromium`, driven by Playwright), against the
sandbox: candidates, lightbox, select, delete, regenerate, animate, clips that play and seek, marking
a clip failed, the board following a run live, and the page as an MCP App inside a minimal test host.

One browser (the only ones in the suite) and one prepared project for the module; screenshots go to tests/artifacts/review/.
These tests are synchronous: Playwright's sync API drives the browser, and the aivp servers run in
threads (the review server in its own, the test host's MCP client in an anyio portal).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from mcp import Client
from mcp.client import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from aivp.app import build_server
from aivp.demo import SAMPLE
from aivp.review.routes import ClientBackend
from aivp.review.serve import ReviewServer

from .conftest import make_settings

pytestmark = pytest.mark.slow  # one browser and one storyboard run for the module: ~15 s of setup
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts" / "review"
ORANGE = "rgb(249, 115, 22)"


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll a condition (a file, a counter) until it holds; fail naming it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser for the module (the only one that uses it). Playwright's sync API runs an event loop in
    this thread while it is open, so it must be closed before the anyio tests of later modules run."""
    if not Path(CHROMIUM).is_file():
        why = f"no {CHROMIUM}: install Debian's chromium (scripts/bootstrap does it as root) to run the browser tests"
        if os.environ.get("AIVP_CI"):  # CI installs it (.ci/run): a missing browser there is a failure, not a skip
            pytest.fail(why)
        pytest.skip(why)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, sandbox_server: Any) -> Iterator[dict[str, Any]]:
    """The sample storyboard made end to end (every clip), four candidates of shots 1-3, one of shot 4,
    and a review server on it."""
    root = tmp_path_factory.mktemp("review") / "project"
    shutil.copytree(SAMPLE, root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIVP_HOME", str(root.parent / "home"))
        sandbox_server.reset()
        settings = make_settings(root, sandbox_server)

        async def prepare() -> None:
            async with Client(build_server(settings)) as c:
                r = await c.call_tool("run_storyboard", {"mode": "run", "wait_s": 120})
                assert r.structured_content and r.structured_content["status"] == "done", r.content
                for shot, count in ((1, 4), (2, 4), (3, 4), (4, 1)):
                    r = await c.call_tool("generate_candidates", {"shot": shot, "count": count})
                    assert not r.is_error, r.content

        with anyio.from_thread.start_blocking_portal() as portal:  # Playwright's loop owns this thread
            portal.call(prepare)

        @asynccontextmanager
        async def backend() -> AsyncIterator[ClientBackend]:
            async with Client(build_server(settings)) as client:
                yield ClientBackend(client)

        server = ReviewServer(root, backend).start()
        try:
            yield {"root": root, "server": server, "settings": settings, "sandbox": sandbox_server}
        finally:
            server.stop()
            sandbox_server.reset()


@pytest.fixture(scope="module")
def context(browser: Any, studio: dict[str, Any]) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    page.goto(studio["server"].link)  # spends the one-time token; the cookie stays in this context
    assert "token" not in page.url  # the redirect dropped it from the address bar
    page.close()
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: Any, studio: dict[str, Any]) -> Iterator[Any]:
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.base = f"http://127.0.0.1:{studio['server'].port}/"
    try:
        yield p
    finally:
        p.close()
    assert not errors, errors


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_status(page: Any, number: int, *wanted: str) -> None:
    """Wait until the board shows shot `number` in one of `wanted` (rows are redrawn on every update)."""
    page.wait_for_function("([n, wanted]) => wanted.includes(document.querySelector("
                           "`[data-testid=shot-row][data-shot='${n}'] [data-testid=shot-status]`)?.textContent)",
                           arg=[number, list(wanted)], timeout=30_000)


def cards(page: Any) -> list[str]:
    return [c.get_attribute("data-file") for c in page.locator('[data-testid="candidate"]').all()]


def test_candidates_grid_and_lightbox(page: Any) -> None:
    t0 = time.monotonic()
    page.goto(page.base + "#candidates/1")
    page.locator('[data-testid="candidate"]').nth(3).wait_for()
    fcp = page.evaluate("() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1")
    kb = page.evaluate("() => document.documentElement.outerHTML.length") / 1024
    print(f"\nreview page: {kb:.0f} KB, first paint {fcp:.0f} ms, four candidates after {time.monotonic() - t0:.2f} s")
    assert fcp >= 0
    assert cards(page) == ["ff-c1.png", "ff-c2.png", "ff-c3.png", "ff-c4.png"]
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=candidate] img')].every(i => i.naturalWidth > 0)")
    caption = page.locator('[data-testid="candidate"]').first.inner_text()
    assert "nano-banana-pro" in caption and "seed " in caption and "sandbox ($0.15)" in caption  # nothing charged
    columns = page.eval_on_selector(".grid", "g => getComputedStyle(g).gridTemplateColumns.split(' ').length")
    assert columns == 2  # 2x2
    shot(page, "candidates")
    box = page.locator('[data-testid="lightbox"]')
    page.locator('[data-testid="candidate"] img').nth(1).click()
    assert box.is_visible() and box.get_attribute("data-file") == "ff-c2.png"
    page.wait_for_function("() => document.querySelector('#lb-img').naturalWidth > 0")
    page.keyboard.press("ArrowRight")
    assert box.get_attribute("data-file") == "ff-c3.png"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert box.get_attribute("data-file") == "ff-c4.png"  # wraps around
    page.keyboard.press("+")
    assert "zoomed" in (box.get_attribute("class") or "")
    shot(page, "lightbox")
    page.keyboard.press("Escape")
    assert box.is_hidden()


def test_select_moves_the_border_writes_frame_and_plan_then_animate(page: Any, studio: dict[str, Any]) -> None:
    root, sb = studio["root"], studio["sandbox"]
    page.goto(page.base + "#candidates/2")
    page.locator('[data-testid="candidate"]').nth(3).wait_for()
    page.locator('[data-file="ff-c2.png"] [data-testid="select-representative"]').click()
    page.locator('.cand.selected[data-file="ff-c2.png"]').wait_for()
    assert page.eval_on_selector('.cand.selected', "c => getComputedStyle(c).borderTopColor") == ORANGE
    folder = root / "image/candidates/shot-02"
    assert sha(root / "image/frames/shot-02-ff.png") == sha(folder / "ff-c2.png")
    plan = (root / "image/plan.md").read_text()
    assert "| `image/frames/shot-02-ff.png` |" in plan and "| selected |" in plan
    # in the lightbox: select another, the border moves
    page.locator('[data-file="ff-c3.png"] img').click()
    page.locator("#lb-select").click()
    page.locator('.cand.selected[data-file="ff-c3.png"]').wait_for()
    page.keyboard.press("Escape")
    assert page.locator(".cand.selected").count() == 1
    assert sha(root / "image/frames/shot-02-ff.png") == sha(folder / "ff-c3.png")
    assert json.loads((folder / "selected.json").read_text())["first"].endswith("ff-c3.png")
    # Animate: the estimate first, then the clip starts from the selected frame
    clip = root / "video/clips/shot-02.mp4"
    before, videos = clip.stat().st_mtime_ns, sb.submission_count(provider="fal")
    page.locator('[data-testid="animate"]').click()
    page.locator("#dlg-text").wait_for()
    assert "$" in page.locator("#dlg-text").inner_text()
    page.locator('[data-testid="confirm"]').click()
    wait_until(lambda: clip.stat().st_mtime_ns != before, "the animated clip")
    assert sb.submission_count(provider="fal") == videos + 1


def test_delete_removes_a_candidate_and_its_record_not_the_selected(page: Any, studio: dict[str, Any]) -> None:
    root = studio["root"]
    page.goto(page.base + "#candidates/3")
    page.locator('[data-testid="candidate"]').nth(3).wait_for()
    page.locator('[data-file="ff-c1.png"] [data-testid="select-representative"]').click()
    page.locator('.cand.selected[data-file="ff-c1.png"]').wait_for()
    assert page.locator('.cand.selected [data-testid="delete-candidate"]').count() == 0
    page.locator('[data-file="ff-c4.png"] [data-testid="delete-candidate"]').click()
    page.locator('[data-testid="confirm"]').click()
    page.locator('[data-file="ff-c4.png"]').wait_for(state="detached")
    # the storyboard's keyframe that ff-c1 replaced is kept as a candidate (ff-p1), as manage_candidates does
    assert cards(page) == ["ff-c1.png", "ff-c2.png", "ff-c3.png", "ff-p1.png"]
    assert not (root / "image/candidates/shot-03/ff-c4.png").exists()
    assert not (root / "image/log/shot-03-ff-c4.json").exists()
    assert (root / "image/candidates/shot-03/ff-c1.png").is_file()


def test_regenerate_shows_the_estimate_and_keeps_earlier_ones(page: Any, studio: dict[str, Any]) -> None:
    sb = studio["sandbox"]
    page.goto(page.base + "#candidates/4")
    page.locator('[data-testid="candidate"]').first.wait_for()
    submitted = sb.submission_count()
    page.locator('[data-testid="regenerate"]').click()
    page.locator("#dlg-text").wait_for()
    assert "$0.60" in page.locator("#dlg-text").inner_text() and sb.submission_count() == submitted  # a dry run
    page.locator('[data-testid="confirm"]').click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=candidate]').length === 5", timeout=30_000)
    assert cards(page) == ["ff-c1.png", "ff-c2.png", "ff-c3.png", "ff-c4.png", "ff-c5.png"]
    assert sb.submission_count() == submitted + 1


def test_clips_play_and_seek(page: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aivp.review")
    page.goto(page.base + "#clips")
    page.locator('[data-testid="clip"]').nth(5).wait_for()
    video = page.locator('[data-testid="clip"][data-shot="6"] video')
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("(v) => v.readyState >= 2 && v.currentTime > 0.2", arg=video.element_handle())
    video.evaluate("v => new Promise(r => { v.addEventListener('seeked', r, {once: true}); v.currentTime = 4.5; })")
    assert video.evaluate("v => v.currentTime") >= 4.4
    ranges = [r.getMessage() for r in caplog.records if r.getMessage().startswith("range ")]
    assert any("shot-06.mp4" in r for r in ranges), ranges
    shot(page, "clips")


def test_mark_failed_redo_and_the_board_follows_live(page: Any, studio: dict[str, Any]) -> None:
    root, sb = studio["root"], studio["sandbox"]
    page.goto(page.base + "#clips")
    card = page.locator('[data-testid="clip"][data-shot="3"]')
    card.locator('[data-testid="mark-failed"]').click()
    page.locator("#dlg-input").fill("the lens flare | pops")
    page.locator('[data-testid="confirm"]').click()
    card.locator('[data-testid="clip-mark"]').wait_for()
    assert "| failed (review): the lens flare / pops |" in (root / "video/plan.md").read_text()
    page.goto(page.base + "#board")
    wait_status(page, 3, "failed")
    spend = page.locator('[data-testid="spend"]').inner_text()
    assert spend.startswith("Spent $0.00") and "(sandbox: $" in spend and "would have been charged)" in spend
    shot(page, "board-marked")
    sb.stick_queue(True)  # the redo waits in the provider's queue until released
    try:
        page.goto(page.base + "#clips")
        page.locator('[data-testid="clip"][data-shot="3"] [data-testid="redo"]').click()
        page.locator("#dlg-text").wait_for()
        assert "$" in page.locator("#dlg-text").inner_text()
        page.locator('[data-testid="confirm"]').click()
        wait_until(lambda: "| queued |" in (root / "video/plan.md").read_text(), "the redo to be queued")
        page.goto(page.base + "#board")
        wait_status(page, 3, "running", "queued")
        shot(page, "board-running")
    finally:
        sb.stick_queue(False)
    wait_status(page, 3, "done")  # the same page, no reload: it polls while the run goes on
    assert "failed (review)" not in (root / "video/plan.md").read_text()
    shot(page, "board")


def test_the_page_served_by_serve_http_shows_media_through_its_session(browser: Any, studio: dict[str, Any]) -> None:
    """`aivp serve --http` with a token: a one-time link from /review/link opens the page, and its images load
    with the session cookie (an <img> sends no bearer header)."""
    import httpx

    from .conftest import TOKENS, http_server

    with anyio.from_thread.start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(http_server(studio["settings"], tokens=TOKENS, review=True)) as url:
        base = url.removesuffix("/mcp")
        link = httpx.get(f"{base}/review/link", headers={"Authorization": f"Bearer {TOKENS['bob']}"}).json()["url"]
        ctx = browser.new_context(viewport={"width": 1200, "height": 900})
        page = ctx.new_page()
        refused: list[str] = []
        page.on("response", lambda r: refused.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(link)
        assert page.url.startswith(f"{base}/review/") and "ticket" not in page.url  # it left the address bar
        page.goto(f"{base}/review/#candidates/1")
        page.locator('[data-testid="candidate"]').nth(3).wait_for()
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=candidate] img')].every(i => i.naturalWidth > 0)")
        shot(page, "served-over-http")
        ctx.close()
    assert refused == [], refused


def test_the_app_inside_a_test_host(browser: Any, studio: dict[str, Any]) -> None:
    """The ui:// page in a sandboxed iframe of a minimal host that forwards its tools/call and
    resources/read to a real aivp server (an in-memory MCP client in this process)."""
    root, settings = studio["root"], studio["settings"]
    apps = [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})]
    with anyio.from_thread.start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(Client(build_server(settings), extensions=apps)) as client:
        listing = portal.call(client.list_resources)
        ui = next(r for r in listing.resources if r.uri == "ui://aivp/candidates.html")
        assert ui.mime_type == APP_MIME_TYPE
        html = portal.call(client.read_resource, ui.uri).contents[0].text
        result = portal.call(lambda: client.call_tool("generate_candidates", {"shot": 5, "count": 4}))
        assert not result.is_error
        forwarded: list[str] = []

        def forward(method: str, params: str) -> str:
            args = json.loads(params)
            forwarded.append(f"{method} {args.get('name') or args.get('uri')}")
            if method == "tools/call":
                r = portal.call(client.call_tool, args["name"], args.get("arguments") or {})
            else:
                r = portal.call(client.read_resource, args["uri"])
            return json.dumps(r.model_dump(mode="json", by_alias=True, exclude_none=True))

        ctx = browser.new_context(viewport={"width": 1100, "height": 1000})
        page = ctx.new_page()
        loads: list[str] = []
        page.on("request", lambda r: loads.append(r.url) if r.url.startswith("http") else None)
        page.expose_function("aivpForward", forward)
        csp = ui.meta["ui"]["csp"]["resourceDomains"]
        page.set_content(HOST.replace("__CSP__", " ".join(csp)))
        page.evaluate("([html, result]) => start(html, result)",
                      [html, result.model_dump(mode="json", by_alias=True, exclude_none=True)])
        frame = page.frame_locator("#app")
        frame.locator('[data-testid="candidate"]').nth(3).wait_for()
        frame.locator("[data-testid=candidate] img").first.wait_for()
        page.wait_for_function("() => window.hostLog.includes('tools/call')")
        frame.locator('[data-file="ff-c4.png"] [data-testid="select-representative"]').click()
        frame.locator('.cand.selected[data-file="ff-c4.png"]').wait_for()
        shot(page, "app-in-host")
        ctx.close()
    assert sha(root / "image/frames/shot-05-ff.png") == sha(root / "image/candidates/shot-05/ff-c4.png")
    assert "tools/call manage_candidates" in forwarded
    assert any(f.startswith("resources/read aivp://thumb/image/candidates/shot-05/") for f in forwarded)
    assert loads == [], loads  # nothing from the machine or the network: media came through the bridge


HOST = """<!doctype html><meta charset="utf-8"><title>test host</title>
<iframe id="app" sandbox="allow-scripts" style="width:1060px;height:950px;border:0"></iframe>
<script>
window.hostLog = [];
const frame = document.getElementById("app");
const csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
            "img-src data: __CSP__; media-src data: __CSP__; connect-src 'none'";
function send(msg) { frame.contentWindow.postMessage({jsonrpc: "2.0", ...msg}, "*"); }
let toolResult = null;
window.addEventListener("message", async (ev) => {
  const m = ev.data;
  if (ev.source !== frame.contentWindow || !m || m.jsonrpc !== "2.0") return;
  window.hostLog.push(m.method || "response");
  if (m.method === "ui/initialize") {
    send({id: m.id, result: {protocolVersion: m.params.protocolVersion, hostInfo: {name: "test-host", version: "1"},
          hostCapabilities: {serverTools: {}, serverResources: {}}, hostContext: {theme: "light", displayMode: "inline"}}});
  } else if (m.method === "ui/notifications/initialized") {
    send({method: "ui/notifications/tool-input", params: {arguments: {shot: 5, count: 4}}});
    send({method: "ui/notifications/tool-result", params: toolResult});
  } else if (m.method === "tools/call" || m.method === "resources/read") {
    try { send({id: m.id, result: JSON.parse(await window.aivpForward(m.method, JSON.stringify(m.params)))}); }
    catch (e) { send({id: m.id, error: {code: -32603, message: String(e)}}); }
  } else if (m.id !== undefined && m.method) send({id: m.id, result: {}});
});
function start(html, result) {
  toolResult = result;
  frame.srcdoc = `<meta http-equiv="Content-Security-Policy" content="${csp}">` + html;
}
</script>"""
