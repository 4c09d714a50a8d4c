"""Ids for alerts, decisions and controls that stay unique across restarts and instances.

Each id is `<prefix>-<n>`, counted per process. The prefix is the process's
start second (so ids sort roughly by age) plus a random part: two instances
started in the same second, or one restarted within a second, still never
give out the same id.
"""
from __future__ import annotations

import secrets
from typing import Callable

# Random bytes in a prefix: 2^24 values, against at most a few starts per second.
RANDOM_BYTES = 3


def id_prefix(clock: Callable[[], float]) -> str:
    return f"{int(clock()):x}{secrets.token_hex(RANDOM_BYTES)}"
