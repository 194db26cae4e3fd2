"""The one retry policy (providers/http.py) against httpx.MockTransport: what is repeated, and how long it waits."""

from __future__ import annotations

import httpx
import pytest

from aivp.errors import ProviderUnavailable, SubmitUncertain
from aivp.providers.http import RetryPolicy, retry_after, send

pytestmark = pytest.mark.anyio


def policy(waits: list[float], attempts: int = 4) -> RetryPolicy:
    async def record(seconds: float) -> None:
        waits.append(seconds)

    return RetryPolicy(attempts=attempts, base_s=0.5, cap_s=30.0, sleep=record)


def answers(*responses: httpx.Response | Exception) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


async def test_retry_after_is_the_wait_between_attempts() -> None:
    waits: list[float] = []
    client, seen = answers(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={}))
    r = await send(client, "POST", "https://api.example/x", policy=policy(waits), idempotent=False,
                   retryable=lambda r: r.status_code == 429, what="submit")
    assert r.status_code == 200 and len(seen) == 2 and waits == [3.0]


async def test_without_retry_after_the_wait_is_jittered_exponential() -> None:
    waits: list[float] = []
    client, seen = answers(*(httpx.Response(503) for _ in range(3)), httpx.Response(200))
    r = await send(client, "GET", "https://api.example/x", policy=policy(waits), idempotent=True,
                   retryable=lambda r: r.status_code == 503, what="read")
    assert r.status_code == 200 and len(seen) == 4 and len(waits) == 3
    assert all(0.25 * 2 ** i <= w <= 0.75 * 2 ** i for i, w in enumerate(waits))  # base 0.5 x 2^i, jitter 0.5-1.5


async def test_a_retry_after_longer_than_twice_the_cap_is_returned_not_slept() -> None:
    waits: list[float] = []
    client, seen = answers(httpx.Response(429, headers={"Retry-After": "120"}))
    r = await send(client, "GET", "https://api.example/x", policy=policy(waits), idempotent=True,
                   retryable=lambda r: r.status_code == 429, what="read")
    assert r.status_code == 429 and waits == [] and retry_after(r) == 120.0


async def test_a_connect_error_is_repeated_even_for_a_submit() -> None:
    waits: list[float] = []
    client, seen = answers(httpx.ConnectError("refused"), httpx.Response(200))
    r = await send(client, "POST", "https://api.example/x", policy=policy(waits), idempotent=False,
                   retryable=lambda r: False, what="submit")
    assert r.status_code == 200 and len(seen) == 2 and len(waits) == 1


async def test_a_broken_answer_to_a_submit_is_uncertain_not_repeated() -> None:
    client, seen = answers(httpx.ReadError("reset"), httpx.Response(200))
    with pytest.raises(SubmitUncertain, match="did not send it again"):
        await send(client, "POST", "https://api.example/x", policy=policy([]), idempotent=False,
                   retryable=lambda r: False, what="submit")
    assert len(seen) == 1


async def test_connect_errors_give_up_after_the_attempts() -> None:
    waits: list[float] = []
    client, seen = answers(*(httpx.ConnectError("refused") for _ in range(3)))
    with pytest.raises(ProviderUnavailable, match="after 3 attempts"):
        await send(client, "GET", "https://api.example/x", policy=policy(waits, attempts=3), idempotent=True,
                   retryable=lambda r: False, what="read")
    assert len(seen) == 3 and len(waits) == 2
