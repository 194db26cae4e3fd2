"""A sandbox in its own process for the benchmarks: prints {"url": ...} on stdout, exits when stdin closes.

    python bench/_sandbox_proc.py '{"queue_s": 0, "image_s": 2, "video_s": 0}'

Besides the sandbox's own control API (/_sandbox/stats, /config, /reset) it answers
GET /_bench/jobs/<request_id> with the sandbox's timestamps for that job (time.monotonic() of this
process; CLOCK_MONOTONIC is system-wide on Linux, so the parent can compare them with its own).

Option "memo_clips": true (not a sandbox setting; taken out before the rest go to `Sandbox`) encodes
each placeholder clip once per (size, duration, audio, first+last or not) and serves the same MP4 to
later jobs. A clip costs the sandbox ~0.6 CPU-s of mostly GIL-holding Python, so eight at once run one
after another and a 2 s job becomes a 5-10 s one; with the memo the sandbox keeps to its clock.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from aivp.sandbox import Sandbox


def with_bench_routes(app: Any, sb: Sandbox) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/_bench/jobs/"):
            job = sb.state.jobs.get(path.rsplit("/", 1)[-1])
            if job is None:
                status, body = 404, {"detail": "no such job"}
            else:
                status, body = 200, {"submitted": job.submitted, "started": job.started, "finished": job.finished,
                                     "phase": job.phase, "failure": None if job.failure is None else job.failure.message}
            data = json.dumps(body).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})
            return
        await app(scope, receive, send)

    return wrapped


def memoize_clips() -> None:
    from aivp.sandbox import video

    render = video.render_video
    memo: dict[tuple[Any, ...], bytes] = {}

    def render_video(*, size: tuple[int, int], duration_s: float, base: Any, end: Any, audio: bool, label: str) -> bytes:
        key = (tuple(size), duration_s, audio, end is None)
        if key not in memo:
            memo[key] = render(size=size, duration_s=duration_s, base=base, end=end, audio=audio, label=label)
        return memo[key]

    video.render_video = render_video  # jobs.render_outputs imports it from the module at call time


def main() -> None:
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    if options.pop("memo_clips", False):
        memoize_clips()
    sb = Sandbox(port=0, **options)
    sb.app = with_bench_routes(sb.app, sb)
    sb.start()
    print(json.dumps({"url": sb.url}), flush=True)
    try:
        sys.stdin.read()  # until the parent closes the pipe (or dies)
    finally:
        sb.stop()


if __name__ == "__main__":
    main()
