"""Rate limits per device key (or operator token) and per IP.

Built on `limits`, the engine under flask-limiter: flask-limiter's own
per-request limit resolution cost about a quarter of a single-reading
request here (py-spy), so each limited blueprint gets one parsed limit and a
fixed-window check in its before_request instead.

The key is the credential's label when a valid one is presented, else the
client's address; so one noisy device cannot starve another, and
unauthenticated floods are limited per address. A limited request gets 429
with Retry-After. Storage is in memory unless RATELIMIT_STORAGE_URI points at
a shared store (e.g. redis://) for several instances. If that store cannot
be reached, limits are counted in memory until it is back: an outage of
Redis must not turn ingest into errors.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Callable

from flask import Blueprint, Flask, request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from app.api.common import caller
from app.security import TokenSet

logger = logging.getLogger(__name__)

# Windows kept before expired ones are swept (one per device key or address).
MAX_WINDOWS = 10_000


class RateLimited(TooManyRequests):
    def __init__(self, limit: str, retry_after: int):
        super().__init__(description=limit)
        self.retry_after = retry_after


class LocalFixedWindow:
    """Fixed windows in this process's memory: `memory://`, and the fallback of a shared store.

    The same counting as `limits`' FixedWindowRateLimiter (a window opens at
    its first hit; refused hits count too, so a flood stays limited), without
    its MemoryStorage, which starts a Timer thread every 10 ms under traffic
    and took about a fifth of a single-reading request (py-spy, cProfile).
    Shared stores (redis:// ...) still go through `limits`.
    """

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._windows: dict[str, list[float]] = {}   # key -> [window end, hits]
        self._lock = threading.Lock()

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        key = item.key_for(*identifiers)
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or window[0] <= now:
                if len(self._windows) >= MAX_WINDOWS:
                    self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
                window = self._windows[key] = [now + item.get_expiry(), 0]
            window[1] += 1
            return window[1] <= item.amount

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> tuple[float, int]:
        """(reset time, hits remaining), as `limits` reports them."""
        window = self._windows.get(item.key_for(*identifiers))
        if window is None or window[0] <= self.clock():
            return self.clock(), item.amount
        return window[0], max(0, item.amount - int(window[1]))


class BlueprintLimit:
    def __init__(self, limit: str, limiter, tokens: TokenSet, scope: str,
                 fallback: LocalFixedWindow | None = None):
        self.text = limit
        self.item = parse(limit)
        self.limiter = limiter
        self.fallback = fallback
        self.shared_up = True
        self.tokens = tokens
        self.scope = scope

    def key(self) -> str:
        """The caller's credential label (from the request's one credential check), else its address."""
        who = caller()
        if who.device is not None and self.tokens.role == "device":
            return f"registered:{who.device.id}"
        label = who.label(self.tokens.role)
        return f"{self.tokens.role}:{label}" if label else f"ip:{request.remote_addr}"

    def check(self) -> None:
        key = self.key()
        limiter = self.limiter
        try:
            allowed = limiter.hit(self.item, self.scope, key)
            self.shared_up = True
        except Exception as error:   # shared storage away: count locally meanwhile
            if self.fallback is None:
                raise
            if self.shared_up:
                logger.warning("rate-limit storage unreachable (%s): counting in memory", error)
            self.shared_up = False
            limiter = self.fallback
            allowed = limiter.hit(self.item, self.scope, key)
        if not allowed:
            reset, _ = limiter.get_window_stats(self.item, self.scope, key)
            raise RateLimited(self.text, max(1, math.ceil(reset - time.time())))


def install_limits(app: Flask, storage_uri: str, limited: list[tuple[Blueprint, str, TokenSet]]) -> None:
    """Limit each (blueprint, limit, credentials) triple, e.g. ingest by device key.

    The check hangs on the app, not the (module-level) blueprints, so every
    app built in a process keeps its own limits.
    """
    if storage_uri.startswith("memory://"):
        limiter, fallback = LocalFixedWindow(), None
    else:
        limiter, fallback = FixedWindowRateLimiter(storage_from_string(storage_uri)), LocalFixedWindow()
    rules = {bp.name: BlueprintLimit(limit, limiter, tokens, bp.name, fallback)
             for bp, limit, tokens in limited}

    @app.before_request
    def rate_limit() -> None:
        rule = rules.get(request.blueprint)
        if rule is not None:
            rule.check()
