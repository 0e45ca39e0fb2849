"""A token bucket per client address for anonymous submissions.

In-process: right for the embedded default (one process). Several API processes behind
a proxy each keep their own buckets, so the effective limit is multiplied by their
number; such deployments should put the limit in the reverse proxy or a shared store
(see docs/requests.md).
"""

from __future__ import annotations

import threading
import time

from territoire.errors import DomainError

MAX_TRACKED = 10_000


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"


class TokenBucket:
    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(1, burst))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, moment))
            tokens = min(self.burst, tokens + (moment - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, moment)
            if len(self._buckets) > MAX_TRACKED:
                self._forget_full(moment)
        return allowed

    def check(self, key: str) -> None:
        if not self.allow(key):
            raise RateLimited("too many submissions from this address; wait a minute and try again")

    def _forget_full(self, moment: float) -> None:
        """Drop buckets that have refilled: they carry no information any more."""
        refill = self.burst / self.rate if self.rate > 0 else float("inf")
        self._buckets = {
            key: value for key, value in self._buckets.items() if moment - value[1] < refill
        }
