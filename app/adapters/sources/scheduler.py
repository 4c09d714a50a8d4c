"""Runs every configured source on its interval and feeds what it fetched into ingest.

One background task per source (so a slow server or a long Retry-After holds
up only its own source). Each fetch goes through the shared `SourceHttp`; its
observations become readings with the source's `source` tag and their own
observation time, and enter the same ingest path as device readings. Nothing
raises out of here: every failure is counted with its reason and shown by
`listing()` (GET /api/sources), and the breaker paces retries.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from app.adapters.sources.base import FetchResult, SourceAdapter, WeatherHour
from app.adapters.sources.breaker import CircuitBreaker
from app.adapters.sources.config import SourceConfig
from app.adapters.sources.http import FetchFailed, SourceHttp, mask
from app.domain.clock import iso
from app.errors import DomainError, NotFound
from app.models import MAX_FUTURE_S

logger = logging.getLogger(__name__)

# Longest single wait of a source's task, so stop() is never kept waiting long.
MAX_WAIT_S = 5.0
# Readings per ingest call: well under the ingest batch limit.
INGEST_CHUNK = 1000


@dataclass
class SourceState:
    config: SourceConfig
    adapter: SourceAdapter
    breaker: CircuitBreaker
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)
    next_at: float = 0.0
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: dict | None = None
    last_fetch: dict | None = None
    fetches: int = 0
    failures: int = 0
    not_modified: int = 0
    fetched: int = 0
    mapped: int = 0
    ingested: int = 0
    dropped: Counter = field(default_factory=Counter)
    # Newest observation time ingested per (node, metric): re-fetched records are not re-ingested.
    newest: dict = field(default_factory=dict)


class SourceScheduler:
    def __init__(self, sources: list[tuple[SourceConfig, SourceAdapter]], http: SourceHttp,
                 ingest: Callable[[list[dict], str], list], sensor_for: Callable[[str, str], str],
                 spawn: Callable, *, failures_to_pause: int, max_pause_s: float,
                 on_weather: Callable[[list[WeatherHour]], None] | None = None,
                 clock: Callable[[], float] = time.time):
        self.http = http
        self.ingest = ingest
        self.sensor_for = sensor_for
        self.spawn = spawn
        self.on_weather = on_weather
        self.clock = clock
        self.states = {config.id: SourceState(config, adapter,
                                              CircuitBreaker(failures_to_pause, config.interval_s, max_pause_s))
                       for config, adapter in sources}
        self._by_provenance = {s.config.provenance: s.config.interval_s for s in self.states.values()}
        self._running = False

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self._running = True
        for state in self.states.values():
            if state.config.enabled:
                state.next_at = self.clock()
                self.spawn(self._loop, state)

    def stop(self) -> None:
        self._running = False
        for state in self.states.values():
            state.wake.set()
        self.http.close()

    def _loop(self, state: SourceState) -> None:
        while self._running:
            wait = state.next_at - self.clock()
            if wait > 0:
                state.wake.wait(min(wait, MAX_WAIT_S))
                state.wake.clear()
                continue
            self.run(state.config.id)

    # -- one fetch -----------------------------------------------------------
    def run(self, source_id: str) -> dict:
        """Fetch one source now; never raises for what the server did. Returns its status."""
        state = self.states.get(source_id)
        if state is None:
            raise NotFound(f"no source '{source_id}'")
        with state.lock:
            now = self.clock()
            state.last_attempt = now
            state.fetches += 1
            try:
                result = state.adapter.fetch(self.http, now)
                summary = self._take(state, result, now)
            except FetchFailed as error:
                self._failed(state, error.reason, now)
            except Exception as error:   # a bug in an adapter must not stop its source
                logger.exception("source %s: fetch raised", source_id)
                self._failed(state, mask(f"internal error: {type(error).__name__}: {error}",
                                         self.http.secrets), now)
            else:
                state.breaker.succeeded()
                state.last_success, state.last_fetch = now, summary
                state.next_at = now + state.config.interval_s
        return self.status(state)

    def _take(self, state: SourceState, result: FetchResult, now: float) -> dict:
        provenance = state.config.provenance
        items, unchanged, dropped = [], 0, Counter(result.dropped)
        for obs in sorted(result.observations, key=lambda o: o.ts):
            key = (obs.node_id, obs.metric)
            if obs.ts <= state.newest.get(key, float("-inf")):
                unchanged += 1
                continue
            if obs.ts > now + MAX_FUTURE_S:
                dropped["observed in the future"] += 1
                continue
            items.append({"sensor_id": self.sensor_for(obs.node_id, obs.metric), "value": obs.value,
                          "metric": obs.metric, "unit": obs.unit, "node_id": obs.node_id,
                          "timestamp": iso(obs.ts), "_key": key, "_ts": obs.ts})
        for start in range(0, len(items), INGEST_CHUNK):
            chunk = items[start:start + INGEST_CHUNK]
            try:
                self.ingest([{k: v for k, v in item.items() if not k.startswith("_")} for item in chunk],
                            provenance)
            except DomainError as error:
                raise FetchFailed(f"readings refused by ingest: {error}") from None
            for item in chunk:
                state.newest[item["_key"]] = max(item["_ts"], state.newest.get(item["_key"], item["_ts"]))
        if result.weather and self.on_weather is not None:
            self.on_weather(result.weather)
        state.fetched += result.fetched
        state.mapped += len(result.observations)
        state.ingested += len(items)
        state.dropped.update(dropped)
        state.not_modified += result.not_modified
        if result.warnings:
            logger.warning("source %s: %s", state.config.id, "; ".join(result.warnings))
        return {"at": iso(now), "fetched": result.fetched, "mapped": len(result.observations),
                "ingested": len(items), "unchanged": unchanged, "dropped": dict(dropped),
                "not_modified": result.not_modified, "warnings": result.warnings,
                **({"skipped": result.skipped} if result.skipped else {}),
                **({"scenes": result.scenes} if result.scenes else {})}

    def _failed(self, state: SourceState, reason: str, now: float) -> None:
        state.failures += 1
        state.last_error = {"at": iso(now), "reason": reason}
        delay = state.breaker.failed(now)
        state.next_at = now + delay
        if state.breaker.state(now) == "paused":
            logger.warning("source %s paused for %.0fs after %d failures in a row: %s",
                           state.config.id, delay, state.breaker.failures, reason)
        else:
            logger.warning("source %s failed: %s", state.config.id, reason)

    # -- views ---------------------------------------------------------------
    def listing(self) -> list[dict]:
        return [self.status(state) for state in self.states.values()]

    def interval_of(self, provenance: str) -> float | None:
        return self._by_provenance.get(provenance)

    def status(self, state: SourceState) -> dict:
        c, now = state.config, self.clock()
        secret = c.secret_env
        return {
            "id": c.id, "type": c.type, "source": c.provenance,
            "status": "disabled" if not c.enabled else state.breaker.state(now),
            "url": c.base_url, "interval_s": c.interval_s,
            "last_attempt": _iso(state.last_attempt), "last_success": _iso(state.last_success),
            "last_error": state.last_error,
            "next_fetch": _iso(state.next_at) if c.enabled and self._running else None,
            "consecutive_failures": state.breaker.failures,
            "paused_until": _iso(state.breaker.paused_until) if state.breaker.state(now) == "paused" else None,
            "fetches": state.fetches, "failures": state.failures, "not_modified": state.not_modified,
            "records_fetched": state.fetched, "records_mapped": state.mapped,
            "records_dropped": sum(state.dropped.values()), "dropped_reasons": dict(state.dropped),
            "readings_ingested": state.ingested, "last_fetch": state.last_fetch,
            # The variable's name and whether it is set; never its value.
            "credentials": {"env": secret, "set": bool(secret) and self._has_env(secret)} if secret else None,
        }

    @staticmethod
    def _has_env(name: str) -> bool:
        return bool(os.environ.get(name))


def _iso(ts: float | None) -> str | None:
    return iso(ts) if ts else None
