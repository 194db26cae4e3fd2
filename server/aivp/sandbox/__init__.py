"""aivp's sandbox: a real HTTP server on 127.0.0.1 that speaks the providers' wire protocols.

It stands in for fal.ai (queue, storage, CDN, under /fal), Replicate (predictions, files and
output delivery, under /replicate) and BytePlus ModelArk Seedream (synchronous image generation
and expiring signed links, under /byteplus), so aivp's own clients can be tested end to end with
no key and no network. It renders real placeholder media (PNG cards, H.264 MP4 clips) that say
PLACEHOLDER on every frame, and misbehaves on request (faults, stuck queues, safety refusals,
expired URLs, huge outputs). Imported only by tests, `aivp sandbox` and `aivp demo`.

    from aivp.sandbox import Sandbox
    with Sandbox() as sb:
        sb.fault("status", preset="ingress_503", times=2)
        ...

Modules: `server` (Sandbox, serve), `app` (the composed ASGI app and provider table),
`fal_queue` and `fal_storage` (fal's wire protocol), `replicate` and `byteplus` (theirs),
`jobs` (the queue/run/render engine every provider shares),
`validate` (catalog-driven checks), `faults`, `storage`, `render`, `video`, `control`.
"""

from .faults import PRESETS, Fault
from .server import Sandbox, serve
from .state import Config, RequestRecord, Submission

__all__ = ["PRESETS", "Config", "Fault", "RequestRecord", "Sandbox", "Submission", "serve"]
