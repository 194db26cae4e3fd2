"""Benchmark 7: the live model catalog.

1. The first `search_models` call of a server (curated models, then fal's live list with unit prices)
   against the sandbox's platform API in its own process, with a cold cache (a new AIVP_CACHE_DIR: a
   `/v1/models` search page and a pricing request), with a warm disk cache (a new server, same cache dir: no
   request), and a second call in the same server (warm memory). Baseline: the same call with
   `live=false` (curated only, no lookup at all). Also the first `search_models(model=<live endpoint>)`
   card, cold and warm (find with `expand=openapi-3.0` plus a price).
2. Validating one call against a large live schema: a generated fal OpenAPI document with N properties
   (enums as strings and integers, ranges, `$ref`'d nested objects, arrays of objects, unions), refs
   inlined once, then the flat arguments mapped, coerced and checked with jsonschema (`build_live`),
   timed per call; and `validate()` alone. The sandbox fixture `fal-ai/hidream-i1-full` for comparison.

    python bench/bench_catalog.py [--n 10] [--props 400] [--quick]

Cold start (spawn -> tools/list) is benchmark 5 (`bench_coldstart.py`): the live layer adds no import
and no request at start-up.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Row, SandboxProcess, emit_rows, make_settings, med, ms, new_project, pct  # noqa: E402

LIVE_ENDPOINT = "fal-ai/pixverse/v5.5/image-to-video"


async def _first_call(settings: Any, args: dict[str, Any], again: bool = False) -> tuple[float, float | None, int]:
    """(first call s, second call s or None, live rows) on a fresh in-memory server."""
    from mcp import Client

    from aivp.app import build_server

    async with Client(build_server(settings)) as c:
        t0 = time.perf_counter()
        r = await c.call_tool("search_models", args)
        first = time.perf_counter() - t0
        if r.is_error:
            raise SystemExit(f"search_models failed: {getattr(r.content[0], 'text', r.content)}")
        rows = len((r.structured_content or {}).get("live") or [])
        second = None
        if again:
            t0 = time.perf_counter()
            await c.call_tool("search_models", args)
            second = time.perf_counter() - t0
        return first, second, rows


def search_bench(n: int) -> list[Row]:
    import anyio

    args = {"query": "pixverse", "limit": 8}
    card = {"model": LIVE_ENDPOINT}
    results: dict[str, list[float]] = {k: [] for k in ("cold", "disk", "memory", "curated", "card_cold", "card_warm")}
    with SandboxProcess(queue_s=0, image_s=0, video_s=0) as sb:
        requests_before = sb.stats()["requests"]
        rows = 0
        cold_requests = 0
        for i in range(n + 1):  # the first round warms the interpreter (imports, mcp), not counted
            project = new_project("aivp-bench-catalog-")
            cache = project.parent / "cache"
            settings = make_settings(project, sb.env(), cache_dir=cache)
            before = sb.stats()["requests"]
            cold, _, rows = anyio.run(_first_call, settings, args)
            cold_requests = sb.stats()["requests"] - before
            disk, memory, _ = anyio.run(_first_call, settings, args, True)
            curated, _, _ = anyio.run(_first_call, settings, {**args, "live": False})
            shutil.rmtree(cache, ignore_errors=True)
            card_cold, _, _ = anyio.run(_first_call, settings, card)
            card_warm, _, _ = anyio.run(_first_call, settings, card)
            if i == 0:
                continue
            for key, value in (("cold", cold), ("disk", disk), ("memory", memory or 0.0), ("curated", curated),
                               ("card_cold", card_cold), ("card_warm", card_warm)):
                results[key].append(value)
        platform = sb.stats()["by_route"]
        sent = sb.stats()["requests"] - requests_before
    print(f"\n7a. first search_models (query='pixverse', limit 8; {rows} live row(s)), median of {n}; "
          "in-memory MCP client, sandbox in its own process")
    print(f"    cold cache ({cold_requests} platform requests: search page + prices)   {ms(med(results['cold']))}  "
          f"(p90 {ms(pct(results['cold'], 90))})")
    print(f"    warm disk cache, new server (no request)            {ms(med(results['disk']))}")
    print(f"    second call, same server (memory)                   {ms(med(results['memory']))}")
    print(f"    curated only (live=false): baseline                 {ms(med(results['curated']))}")
    print(f"    search_models(model=<live endpoint>) cold / warm    {ms(med(results['card_cold']))} / "
          f"{ms(med(results['card_warm']))}")
    print(f"    platform requests seen by the sandbox: {platform.get('platform_models', 0)} /v1/models, "
          f"{platform.get('platform_pricing', 0)} pricing ({sent} requests in all)")
    return [
        Row("search_models, cold live cache", ms(med(results["cold"])), ms(med(results["curated"])) + " curated only",
            f"{med(results['cold']) / med(results['curated']):.1f}x", None),
        Row("search_models, warm disk cache", ms(med(results["disk"])), ms(med(results["curated"])) + " curated only",
            f"{med(results['disk']) / med(results['curated']):.1f}x", None),
        Row("live model card, cold / warm", f"{ms(med(results['card_cold']))} / {ms(med(results['card_warm']))}",
            "-", "-", None),
    ]


# ---------------------------------------------------------------- validation against a large schema

def large_openapi(props: int) -> dict[str, Any]:
    """A fal-shaped OpenAPI document with `props` input properties of every kind a real one has."""
    schemas: dict[str, Any] = {
        "Lora": {"type": "object", "required": ["path"], "properties": {
            "path": {"type": "string"}, "scale": {"type": "number", "minimum": 0, "maximum": 4, "default": 1}}},
        "ImageSize": {"type": "object", "properties": {
            "width": {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 14142},
            "height": {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 14142}}},
        "File": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"},
                                                                         "content_type": {"type": "string", "nullable": True}}},
    }
    properties: dict[str, Any] = {"prompt": {"type": "string"}, "image_url": {"type": "string", "description": "URL of the start frame"}}
    kinds = ["enum_s", "enum_i", "int", "num", "bool", "ref", "array", "union", "str"]
    for i in range(props - len(properties)):
        k = kinds[i % len(kinds)]
        name = f"p{i:03d}_{k}"
        properties[name] = {
            "enum_s": {"type": "string", "enum": [str(x) for x in range(12)], "default": "1"},
            "enum_i": {"type": "integer", "enum": [8, 16, 24, 32]},
            "int": {"type": "integer", "minimum": 0, "maximum": 1000, "nullable": True},
            "num": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5},
            "bool": {"type": "boolean", "default": False},
            "ref": {"allOf": [{"$ref": "#/components/schemas/Lora"}]},
            "array": {"type": "array", "items": {"$ref": "#/components/schemas/Lora"}, "maxItems": 5},
            "union": {"anyOf": [{"$ref": "#/components/schemas/ImageSize"},
                                {"type": "string", "enum": ["square_hd", "landscape_16_9"]}]},
            "str": {"type": "string", "maxLength": 200},
        }[k]
    schemas["BigInput"] = {"type": "object", "required": ["prompt", "image_url"], "properties": properties,
                           "x-fal-order-properties": list(properties)}
    schemas["BigOutput"] = {"type": "object", "properties": {"video": {"allOf": [{"$ref": "#/components/schemas/File"}]}}}
    return {"openapi": "3.0.4", "components": {"schemas": schemas}, "paths": {
        "/x": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/BigInput"}}}}}},
        "/x/requests/{request_id}": {"get": {"responses": {"200": {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/BigOutput"}}}}}}}}}


def _options(schema: dict[str, Any], count: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in list(schema["properties"])[2:]:
        if len(out) >= count:
            break
        kind = name.split("_", 1)[1]
        out[name] = {"enum_s": "3", "enum_i": 16, "int": 500, "num": 0.25, "bool": True,
                     "ref": {"path": "a", "scale": 2}, "array": [{"path": "a"}, {"path": "b", "scale": 1.5}],
                     "union": {"width": 1280, "height": 720}, "str": "x" * 40}[kind]
    return out


def validate_bench(props: int, n: int) -> list[Row]:
    from aivp.catalog.live import LiveEndpoint, parse_fal
    from aivp.catalog.livemodel import as_model, build_live
    from aivp.catalog.openapi import fal_schemas
    from aivp.catalog.validate import validate
    from aivp.sandbox.platform_docs import fixtures

    doc = large_openapi(props)
    t0 = time.perf_counter()
    inp, out = fal_schemas(doc)
    parse_s = time.perf_counter() - t0
    ep = LiveEndpoint("fal", "bench/large", "bench/large", "large", "image-to-video", "active", "", inp, out)
    model, endpoint, route = as_model(ep, "video", "i2v")
    roles = {"prompt": "waves", "start_image": "https://example.invalid/a.png"}
    options = _options(inp, min(60, props - 2))
    build_live(model, endpoint, route, inp, roles, options)  # warm-up (imports jsonschema once)
    times, checks = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        b = build_live(model, endpoint, route, inp, roles, options)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        validate("bench", inp, b.payload, {})
        checks.append(time.perf_counter() - t0)
    item = next(i for i in fixtures()["fal"] if i["endpoint_id"] == "fal-ai/hidream-i1-full")
    small = parse_fal(item)
    sm, se, sr = as_model(small, "image", "t2i")
    small_times = []
    for _ in range(n):
        t0 = time.perf_counter()
        build_live(sm, se, sr, small.input, {"prompt": "x", "aspect_ratio": "16:9"}, {"loras": [{"path": "a"}]})
        small_times.append(time.perf_counter() - t0)
    print(f"\n7b. one call checked against a live schema, median of {n}")
    print(f"    large schema: {props} properties ({len(options) + 2} set), refs inlined once in {ms(parse_s)}")
    print(f"    map + coerce + jsonschema (build_live)  {ms(statistics.median(times))}  (p90 {ms(pct(times, 90))})")
    print(f"    jsonschema validate() alone             {ms(statistics.median(checks))}")
    print(f"    fixture fal-ai/hidream-i1-full (11 properties): build_live {ms(statistics.median(small_times))}")
    return [Row(f"check a call vs a {props}-property live schema", ms(statistics.median(times)),
                ms(statistics.median(small_times)) + " (11 props)", "-", None)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="rounds of the search measurements (default 10)")
    ap.add_argument("--props", type=int, default=400, help="properties of the large schema (default 400)")
    ap.add_argument("--quick", action="store_true", help="n=4, 50 validation rounds")
    args = ap.parse_args()
    n = 4 if args.quick else args.n
    rows = search_bench(n)
    rows += validate_bench(args.props, 50 if args.quick else 200)
    emit_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
