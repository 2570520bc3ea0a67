"""Pacing replies: a token bucket over datagrams.

`musegen serve` answers a request with one datagram per note; a thousand notes sent in one
unpaced burst overrun a host's UDP receive buffer while it is busy between ticks, and UDP drops
what does not fit without telling anyone. The buffer fills by datagrams more than by bytes:
Linux charges each small datagram ~1 KiB of its default 208 KiB, so it holds ~200 notes.
The bucket lets `burst` datagrams go at once and holds the rest to `rate` a second: a take of
8 bars (~130 notes) leaves at once; 8 takes of 8 bars (~1000 notes) take about 0.2 s.

Hand-written (a dozen lines) because the server needs a blocking wait per datagram, not the
asyncio or request-level rate limiters the well-known packages offer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """Token bucket: `wait(n)` returns at once while `burst` units (datagrams) have not been
    spent, and otherwise sleeps until `n` more fit in the refill of `rate` a second."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError(f"rate and burst must be positive, got rate={rate}, burst={burst}")
        self.rate, self.burst = float(rate), float(burst)
        self._clock, self._sleep = clock, sleep
        self._tokens, self._last = float(burst), clock()
        self._lock = threading.Lock()
        self.waited_s = 0.0  # total time spent waiting (reported by /musegen/status)

    def wait(self, n: float = 1) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            if self._tokens < 0:  # in debt: sleep until it is paid back
                pause = -self._tokens / self.rate
                self.waited_s += pause
                self._sleep(pause)
