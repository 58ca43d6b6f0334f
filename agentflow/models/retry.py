"""Retries for provider calls (tenacity), and the one error users see when they give up.

Both SDKs raise the same shapes: a status error carrying the HTTP response, and a connection
error (timeouts are a kind of it). The SDKs' own retries are turned off so this is the only
retry layer, and it honours `Retry-After` / `retry-after-ms`.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from ..core.errors import ModelError

T = TypeVar("T")

MAX_RETRY_AFTER = 60.0  # never sleep longer than this on a server's word


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts in all, and the exponential backoff used when no Retry-After is sent."""

    attempts: int = 4
    initial_delay: float = 0.5
    max_delay: float = 20.0


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _is_connection_error(exc: BaseException) -> bool:
    # openai.APIConnectionError / anthropic.APIConnectionError (and their APITimeoutError)
    return any(cls.__name__ == "APIConnectionError" for cls in type(exc).__mro__)


class MalformedReply(Exception):
    """A reply whose body is not the JSON object its wire format promises: a proxy's error page, a
    glitching server. Retried like a 5xx."""


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, MalformedReply):
        return True
    status = _status(exc)
    if status is not None:
        return status in (408, 409, 429) or status >= 500
    return _is_connection_error(exc)


def retry_after_seconds(exc: BaseException) -> float | None:
    """The delay the server asked for, from `retry-after-ms` or `Retry-After` (seconds or a date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return min(float(ms) / 1000.0, MAX_RETRY_AFTER)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return min(float(value), MAX_RETRY_AFTER)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, min(parsed.timestamp() - time.time(), MAX_RETRY_AFTER))


def delay_after(policy: RetryPolicy, exc: BaseException | None, failed: int) -> float:
    """The wait after the `failed`-th failed attempt: what the server asked for, else exponential."""
    asked = retry_after_seconds(exc) if exc else None
    return asked if asked is not None else min(policy.initial_delay * 2 ** (failed - 1), policy.max_delay)


async def call_with_retries(
    fn: Callable[[], Awaitable[T]], *, policy: RetryPolicy, provider: str, model: str, base_url: str, key_env: str,
    secret: str | None = None,
) -> T:
    """Run `fn`, retrying what is worth retrying; anything that gives up becomes a `ModelError`.

    The first attempt runs bare, and tenacity is imported only after a failure: its machinery
    cost CPU and memory on every call, and almost every call succeeds at once."""
    def give_up(exc: Exception, attempts: int) -> NoReturn:
        failure = describe_failure(exc, provider=provider, model=model, base_url=base_url, key_env=key_env,
                                   attempts=attempts, secret=secret)
        if failure is exc:  # not a provider failure: as it was
            raise exc
        if secret and secret in f"{exc} {exc!r}":  # a provider that quotes the key: its error is not chained
            raise failure from None
        raise failure from exc

    try:
        return await fn()
    except Exception as exc:
        if policy.attempts <= 1 or not is_retryable(exc):
            give_up(exc, 1)
        await asyncio.sleep(delay_after(policy, exc, 1))
    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts - 1),
        wait=lambda state: delay_after(policy, state.outcome.exception() if state.outcome else None,
                                       state.attempt_number + 1),
        retry=retry_if_exception(is_retryable),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await fn()
    except Exception as exc:
        give_up(exc, 1 + retrying.statistics.get("attempt_number", 1))
    raise AssertionError("unreachable")  # pragma: no cover


def describe_failure(
    exc: BaseException, *, provider: str, model: str, base_url: str, key_env: str, attempts: int,
    secret: str | None = None,
) -> ModelError | BaseException:
    """A `ModelError` whose message says what failed and what to do about it."""
    status = _status(exc)
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    head = f"{provider} model {model!r}"
    if isinstance(exc, MalformedReply):
        return ModelError(f"{head}: the reply from {base_url} is not a JSON object{tried} ({exc}). Fix: check that "
                          f"{base_url} is the provider's API (not a proxy's page), or retry later.",
                          provider=provider, model=model)
    if status is None and not _is_connection_error(exc):
        return exc  # not a provider failure: let it through untouched
    if status is None:
        # Some transports (aiohttp's) report a refused connection as a timeout: trust the OS error
        # at the root of the chain over the SDK's class.
        refused = any(isinstance(e, OSError) and not isinstance(e, TimeoutError) for e in _causes(exc))
        kind = "timed out" if "Timeout" in type(exc).__name__ and not refused else "could not connect"
        fix = f"check that {base_url} is reachable (server running, network, proxy), or raise timeout="
        return ModelError(f"{head}: {kind} to {base_url}{tried}. Fix: {fix}.", provider=provider, model=model)
    detail = _api_message(exc)
    if secret:  # some providers quote the key they were sent
        detail = detail.replace(secret, "***")
    fixes: dict[int, str] = {
        400: "the request was rejected; see the provider's message above",
        401: f"check the API key: set {key_env} or pass api_key=",
        403: f"the key in {key_env} lacks access to this model or endpoint",
        404: f"check the model name {model!r} and the base URL {base_url}",
        429: "rate limited or out of quota: wait, lower concurrency, or raise max_retries",
    }
    fix = fixes.get(status, "the provider failed; retry later" if status >= 500 else "see the provider's message")
    return ModelError(f"{head}: HTTP {status}{tried}: {detail}. Fix: {fix}.", provider=provider, model=model,
                      status=status)


def stream_cut(exc: BaseException, *, provider: str, model: str, base_url: str, secret: str | None) -> ModelError:
    """A stream that broke after its first event: not retried, since what it sent is already shown."""
    detail = f"{type(exc).__name__}: {exc}"
    if secret:
        detail = detail.replace(secret, "***")
    return ModelError(f"{provider} model {model!r}: the reply stream from {base_url} was cut ({detail}). Fix: run "
                      "it again; if it recurs, check the server, or a proxy between, for dropped connections.",
                      provider=provider, model=model)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cause = exc.__cause__
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def _api_message(exc: BaseException) -> str:
    body: Any = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(getattr(exc, "message", "") or exc)
