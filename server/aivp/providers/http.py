"""One retry policy for every provider call.

- A connect error means the request never left: it is repeated, even a submit.
- Any other transport error (read timeout, connection reset mid-answer) on a call that is not
  idempotent (a submit) raises `SubmitUncertain`: the provider may have the job, and sending it
  again could charge twice.
- Statuses the provider marks retryable (each provider passes its own predicate, e.g. fal's
  "ingress 5xx without x-fal-request-id") are repeated with jittered exponential backoff that
  honours `Retry-After`; a wait longer than the cap is returned to the caller, which turns it into
  an error naming the wait instead of sleeping for minutes.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from ..errors import ProviderUnavailable, SubmitUncertain

log = logging.getLogger("aivp.http")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    # how to wait between attempts (tests pass a recorder instead of sleeping)
    sleep: Callable[[float], Awaitable[None]] = field(default=anyio.sleep, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): exponential, jittered, capped."""
        return min(self.cap_s, self.base_s * 2.0 ** (attempt - 1) * random.uniform(0.5, 1.5))


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (Retry-After as seconds or an HTTP date), if any."""
    raw = response.headers.get("retry-after", "").strip()
    if not raw:
        return None
    if raw.replace(".", "", 1).isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    idempotent: bool,
    retryable: Callable[[httpx.Response], bool],
    what: str,
    content_factory: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request under the retry policy; return the final response (any status).

    `content_factory` rebuilds a streamed body for each attempt (a file read once cannot be resent).
    """
    attempt = 0
    while True:
        attempt += 1
        if content_factory is not None:
            kwargs["content"] = content_factory()
        try:
            response = await client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if attempt >= policy.attempts:
                raise ProviderUnavailable(
                    f"Could not connect to {host_of(url)} to {what} after {attempt} attempts ({type(exc).__name__}). "
                    "Check the network and the provider's status page, then try again."
                ) from None
            log.info("%s: connect failed (%s); retry %d", what, type(exc).__name__, attempt)
        except httpx.TransportError as exc:
            if not idempotent:
                raise SubmitUncertain(
                    f"The connection to {host_of(url)} broke while sending the request to {what} "
                    f"({type(exc).__name__}); the provider may have accepted it. aivp did not send it again, "
                    "to avoid paying twice."
                ) from None
            if attempt >= policy.attempts:
                raise ProviderUnavailable(
                    f"{host_of(url)} kept failing while trying to {what} ({type(exc).__name__}, {attempt} attempts). "
                    "Try again in a minute."
                ) from None
            log.info("%s: transport error (%s); retry %d", what, type(exc).__name__, attempt)
        else:
            if not retryable(response) or attempt >= policy.attempts:
                return response
            wait = retry_after(response)
            if wait is not None and wait > policy.cap_s * 2:
                return response  # the caller reports the requested wait instead of sleeping through it
            await response.aclose()
            delay = wait if wait is not None else policy.backoff(attempt)
            log.info("%s: HTTP %d; retry %d in %.2fs", what, response.status_code, attempt, delay)
            await policy.sleep(delay)
            continue
        await policy.sleep(policy.backoff(attempt))
