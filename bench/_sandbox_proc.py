"""A sandbox in its own process for the benchmarks: prints {"url": ...} on stdout, exits when stdin closes.

    python bench/_sandbox_proc.py '{"queue_s": 0, "image_s": 2, "video_s": 0}'

Besides the sandbox's own control API (/_sandbox/stats, /config, /reset) it answers
GET /_bench/jobs/<request_id> with the sandbox's timestamps for that job (time.monotonic() of this
process; CLOCK_MONOTONIC is system-wide on Linux, so the parent can compare them with its own).
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


def main() -> None:
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
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
