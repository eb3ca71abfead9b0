"""Pacing requests under a server's rate limits, instead of finding the limits by hitting them.

Real APIs cap requests and tokens per minute. A rater may declare its limits
(``rpm:``, ``tpm:``); the server may also announce them with every answer,
as OpenAI does::

    x-ratelimit-limit-requests: 3000        x-ratelimit-limit-tokens: 250000
    x-ratelimit-remaining-requests: 2999    x-ratelimit-remaining-tokens: 249900
    x-ratelimit-reset-requests: 20ms        x-ratelimit-reset-tokens: 6m0s

One :class:`Pacer` is shared by every worker of a job. Before each request a
worker awaits :meth:`Pacer.acquire` with the request's token estimate; the
pacer releases requests in order, spaced by two token buckets (requests and
tokens) that refill at ``HEADROOM`` (98%) of the lower of the declared and
the announced per-minute limit, with a burst of at most 1% of a minute's
allowance, so a sliding one-minute window on the server never sees more than
99% of the limit. Each answer's headers then correct the buckets: when the server says
fewer requests or tokens remain than the buckets hold (another process uses
the same key), the buckets go into debt and the next requests wait. A 429
holds every worker until the server's Retry-After, and lowers the pace by
15% (it creeps back with each answered request); with no limit known, the
pace becomes 90% of the rate answered over the last ten seconds.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

HEADROOM = 0.98
BURST_SHARE = 0.01  # the buckets hold at most 1% of a period's allowance
MAX_HOLD = 60.0
SLOWDOWN = 0.85
MIN_FACTOR = 0.25
RECOVERY = 0.002  # per answered request, back towards full pace
SPEED_WINDOW = 10.0

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|m|h|d)", re.IGNORECASE)
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | None) -> float | None:
    """Seconds in an OpenAI reset header ("1s", "6m0s", "20ms", "1h2m3.5s", or a bare number); None if unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or _DURATION_PART.sub("", text).strip():
            return None
        seconds = sum(float(number) * _UNIT_SECONDS[unit.lower()] for number, unit in parts)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x >= 0 else None


class Bucket:
    """A token bucket that may go into debt: a taker waits until the level is not negative, then pays."""

    def __init__(self, per_second: float, *, now: float, period: float = 60.0) -> None:
        self.period = period
        self.rate = per_second
        self.capacity = max(1.0, per_second * period * BURST_SHARE)
        self.level = self.capacity
        self.stamp = now

    def set_rate(self, per_second: float, now: float) -> None:
        self.refill(now)
        self.rate = per_second
        self.capacity = max(1.0, per_second * self.period * BURST_SHARE)
        self.level = min(self.level, self.capacity)

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def delay(self, now: float) -> float:
        """Seconds until the level is back to zero (0 when it is not negative)."""
        self.refill(now)
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def clamp(self, at_most: float, now: float) -> None:
        self.refill(now)
        self.level = min(self.level, at_most)


class Pacer:
    """Shared by a job's workers: await acquire(tokens) before a request, call done(...) after it."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None, *, period: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        """rpm, tpm: declared limits per `period` seconds (a minute; tests use shorter periods)."""
        self.clock = clock
        self.period = period
        self.declared = {"requests": rpm, "tokens": tpm}
        self.announced: dict[str, float | None] = {"requests": None, "tokens": None}
        self.measured: float | None = None  # requests per minute, from answers, after a 429 with no known limit
        self.factor = 1.0
        self.buckets: dict[str, Bucket | None] = {"requests": None, "tokens": None}
        self.hold_until = 0.0
        self.in_flight = 0
        self.tokens_in_flight = 0
        self.throttled_count = 0
        self._last_slowdown = -math.inf
        self._answered: deque[float] = deque()
        self._lock: asyncio.Lock | None = None
        self._update_rates()

    # ----------------------------------------------------------------- state

    def per_minute(self, kind: str) -> float | None:
        """The limit the pace follows (before headroom and slowdown): declared, announced, or measured."""
        known = [x for x in (self.declared[kind], self.announced[kind]) if x]
        if not known and kind == "requests" and self.measured:
            known = [self.measured]
        return min(known) if known else None

    def _update_rates(self) -> None:
        now = self.clock()
        for kind in ("requests", "tokens"):
            limit = self.per_minute(kind)
            if limit is None:
                self.buckets[kind] = None
                continue
            per_second = limit / self.period * HEADROOM * self.factor
            bucket = self.buckets[kind]
            if bucket is None:
                self.buckets[kind] = Bucket(per_second, now=now, period=self.period)
            elif not math.isclose(bucket.rate, per_second):
                bucket.set_rate(per_second, now)

    @property
    def active(self) -> bool:
        return any(self.buckets.values()) or self.hold_until > self.clock()

    # ----------------------------------------------------------------- workers

    async def acquire(self, tokens: int = 0) -> None:
        """Wait for this request's turn (requests leave in the order they asked)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = self.clock()
                wait = self.hold_until - now
                for bucket in self.buckets.values():
                    if bucket is not None:
                        wait = max(wait, bucket.delay(now))
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.buckets["requests"] is not None:
                self.buckets["requests"].level -= 1
            if self.buckets["tokens"] is not None:
                self.buckets["tokens"].level -= tokens
            self.in_flight += 1
            self.tokens_in_flight += tokens

    def done(self, tokens: int, headers: Mapping[str, str] | None, *, throttled: bool = False,
             retry_after: float | None = None) -> None:  # fmt: skip
        """A request came back (or failed): learn from its headers; a 429 holds everyone and slows the pace."""
        now = self.clock()
        self.in_flight = max(0, self.in_flight - 1)
        self.tokens_in_flight = max(0, self.tokens_in_flight - tokens)
        if headers:
            self._observe(headers, now)
        if throttled:
            self._throttled(retry_after, now)
        elif headers is not None:
            self._answered.append(now)
            while self._answered and self._answered[0] < now - SPEED_WINDOW:
                self._answered.popleft()
            if self.factor < 1.0:
                self.factor = min(1.0, self.factor + RECOVERY)
                self._update_rates()

    def _observe(self, headers: Mapping[str, str], now: float) -> None:
        changed = False
        for kind, in_flight in (("requests", self.in_flight), ("tokens", self.tokens_in_flight)):
            limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
            if limit and limit != self.announced[kind]:
                self.announced[kind], changed = limit, True
            remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
            if remaining is None:
                continue
            if changed:
                self._update_rates()
                changed = False
            bucket = self.buckets[kind]
            room = remaining - in_flight  # what is left once the requests still out are counted
            if bucket is not None:
                bucket.clamp(room, now)
            elif room <= 0:  # no pace known: wait for the server's reset
                reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
                self.hold_until = max(self.hold_until, now + min(MAX_HOLD, reset if reset is not None else 1.0))
        if changed:
            self._update_rates()

    def _throttled(self, retry_after: float | None, now: float) -> None:
        self.throttled_count += 1
        self.hold_until = max(self.hold_until, now + min(MAX_HOLD, retry_after if retry_after is not None else 1.0))
        if now - self._last_slowdown < 1.0:
            return  # one slowdown per burst of 429s
        self._last_slowdown = now
        if self.per_minute("requests") is None and self.per_minute("tokens") is None and len(self._answered) >= 2:
            span = max(1.0, now - self._answered[0])
            self.measured = len(self._answered) / span * self.period * 0.9
        else:
            self.factor = max(MIN_FACTOR, self.factor * SLOWDOWN)
        self._update_rates()
