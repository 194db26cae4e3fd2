"""The review page: one self-contained HTML file (CSS and vanilla JS inline, nothing fetched from
elsewhere), served by `aivp review` in a browser and as the MCP App resources `ui://aivp/<view>.html`.

The same file serves both; two attributes on <html> tell it which view to open first and how to reach
aivp: `bridge` (inside a host: tools/call and resources/read over postMessage) or `http` (this
package's routes: api/call, api/read, files/).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PAGE = Path(__file__).parent / "static" / "review.html"
VIEWS = ("candidates", "clips", "board")


@cache
def _template() -> str:
    return PAGE.read_text(encoding="utf-8")


def page_html(view: str = "board", transport: str = "http") -> str:
    """The page opening on `view` (candidates, clips, board), talking over `transport` (http or bridge)."""
    if view not in VIEWS or transport not in ("http", "bridge"):
        raise ValueError(f"unknown view {view!r} or transport {transport!r}")
    return _template().replace('data-view="board" data-transport="http"',
                               f'data-view="{view}" data-transport="{transport}"', 1)
