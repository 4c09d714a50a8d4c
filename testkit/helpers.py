"""Small helpers the tests share."""
from __future__ import annotations

import time
from datetime import datetime, timezone


def stamp(t: float) -> str:
    """An ISO 8601 UTC timestamp, as devices send."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def wait_for(fetch, predicate, timeout: float = 20.0, every: float = 0.2):
    """Poll `fetch()` until `predicate(value)` holds; return the value or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last value {str(value)[:400]}"
        time.sleep(every)
