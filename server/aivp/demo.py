"""`aivp demo`: the main job end to end on the embedded sandbox, with no key and no network.

It starts the sandbox in this process, points a fresh aivp server at it, and drives that server
through a real MCP client the way an agent would: a character sheet (front, then side referencing
the front), a keyframe that uses the sheet as a reference, and a clip animated from the keyframe,
collected through queue_status after its first call returns a job handle. Everything it makes is
a labelled placeholder; the summary shows what the same run would cost on the real models.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio


def run_demo(project: Path | None = None) -> int:
    root = (project or Path.cwd() / f"aivp-demo-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    if root.exists() and any(root.iterdir()):
        print(f"{root} already exists and is not empty; pass --project with a new folder.")
        return 2
    root.mkdir(parents=True, exist_ok=True)
    from .sandbox import Sandbox

    with Sandbox(port=0, queue_s=0.3, image_s=0.8, video_s=2.5) as sb:
        env = {**sb.env(), "FAL_KEY": "sandbox-demo-key", "AIVP_HOME": str(root / ".aivp" / "home")}
        return anyio.run(_demo, root, env, sb)


def say(text: str) -> None:
    print(text, flush=True)


async def _demo(root: Path, env: dict[str, str], sb: Any) -> int:
    from mcp import Client

    from .app import build_server
    from .settings import Settings

    settings = Settings.from_env(env, project_dir=root)
    t0 = time.monotonic()
    say(f"aivp demo: project {root}")
    say(f"sandbox: {sb.url} (a local stand-in for fal.ai; every image and clip is a PLACEHOLDER)\n")
    total = 0.0

    async with Client(build_server(settings)) as client:

        async def call(tool: str, args: dict[str, Any]) -> dict[str, Any]:
            last = [""]

            async def progress(p: float, _total: float | None, message: str | None) -> None:
                text = (message or "").split(": ", 1)[-1]
                if text != last[0]:
                    last[0] = text
                    say(f"    … {text}")

            r = await client.call_tool(tool, args, progress_callback=progress)
            if r.is_error:
                raise SystemExit(f"demo step failed: {r.content[0].text}")
            return r.structured_content  # type: ignore[return-value]

        found = await call("search_models", {"task": "i2v", "prefer": "balanced", "limit": 3})
        say("1. Models for image-to-video (search_models):")
        for m in found["models"]:
            say(f"     {m['id']:<22} {m['price']:<48} typical ~${m['typical_cost_usd']:.2f}")

        anchor = "Mara, a lighthouse keeper in her sixties, silver braid, weathered yellow raincoat, kind grey eyes"
        say("\n2. Character sheet: front view first")
        front = await call("generate_image", {
            "prompt": f"Character sheet, full body, front view, neutral pose, plain light background. {anchor}.",
            "aspect_ratio": "3:4", "output": "image/characters/mara-front.png"})
        total += front["cost_usd"] or 0
        say(f"   -> {front['files'][0]['path']}")
        say("   then the side view, with the front view as its reference")
        side = await call("generate_image", {
            "prompt": f"The same character, side view, same outfit and lighting. {anchor}.",
            "references": ["image/characters/mara-front.png"], "aspect_ratio": "3:4",
            "output": "image/characters/mara-side.png"})
        total += side["cost_usd"] or 0
        say(f"   -> {side['files'][0]['path']} (model {side['model']}, reference-guided)")

        say("\n3. Keyframe for shot 01, guided by the character sheet")
        key = await call("generate_image", {
            "prompt": f"Wide shot at dusk: {anchor}, climbs the spiral stairs of the lighthouse, lantern in hand, "
                      "storm clouds outside the window, cinematic lighting",
            "references": ["image/characters/mara-front.png"], "aspect_ratio": "16:9",
            "output": "image/frames/shot-01-ff.png"})
        total += key["cost_usd"] or 0
        say(f"   -> {key['files'][0]['path']}")

        say("\n4. Clip: animate the keyframe (returns a job handle after 1 s, as a real 1-5 min job would)")
        clip = await call("generate_video", {
            "prompt": "Mara climbs the last steps and raises the lantern; rain lashes the glass. "
                      "[Camera: slow push-in] Sound: wind, rain, creaking stairs.",
            "image": "image/frames/shot-01-ff.png", "duration": 5, "output": "video/clips/shot-01.mp4", "wait_s": 1})
        say(f"   job {clip['job_id']} is {clip['status']}; collecting it with queue_status(wait_s=60)")
        status = await call("queue_status", {"job_id": clip["job_id"], "wait_s": 60})
        clip = status["job"]
        if clip["status"] != "completed":
            raise SystemExit(f"demo clip ended {clip['status']}: {clip.get('error')}")
        total += clip["cost_usd"] or 0
        f = clip["files"][0]
        say(f"   -> {f['path']}: {f['duration_s']:.1f} s, {f['width']}x{f['height']}, "
            f"audio {'yes' if f.get('has_audio') else 'no'}, check: {f['check']['message'] if f.get('check') else 'n/a'}")

        again = await call("generate_image", {
            "prompt": f"Character sheet, full body, front view, neutral pose, plain light background. {anchor}.",
            "aspect_ratio": "3:4", "output": "image/characters/mara-front.png"})
        say(f"\n5. The same character-sheet call again: reused={again['reused']}, cost ${again['cost_usd']:.2f} "
            "(identical requests are never paid twice)")

    say("\nDone in {:.1f} s. What is where:".format(time.monotonic() - t0))
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".aivp" not in p.parts):
        say(f"   {path.relative_to(root)}")
    record = json.loads((root / "video/log/shot-01.json").read_text())
    say(f"\nRecord of the clip (video/log/shot-01.json): model {record['model']}, mode {record['mode']}, "
        f"request {record['request_id']}, estimate ${record['cost_usd']:.3f}")
    say(f"Ledger of every job: {root / '.aivp' / 'ledger.sqlite3'} (try: aivp jobs --project {root})")
    say(f"On the real models this run would have cost about ${total:.2f}; here it cost nothing.")
    say(f"Submissions the sandbox received: {sb.submission_count()}")
    return 0
