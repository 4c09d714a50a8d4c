"""Redis connections for the cluster, built from REDIS_URL.

Two clients share nothing: one for short commands with a short timeout, so a
dead Redis is noticed quickly, and one for blocking stream reads, whose socket
timeout must outlast the longest BLOCK it is asked to wait.
"""
from __future__ import annotations

import redis

# Seconds a short command may take before Redis counts as down.
COMMAND_TIMEOUT_S = 2.0
# Extra seconds a blocking read's socket waits beyond its BLOCK.
BLOCKING_MARGIN_S = 3.0


def command_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=COMMAND_TIMEOUT_S,
                                socket_connect_timeout=COMMAND_TIMEOUT_S,
                                health_check_interval=10)


def blocking_client(url: str, block_s: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=block_s + BLOCKING_MARGIN_S,
                                socket_connect_timeout=COMMAND_TIMEOUT_S)


# What redis-py raises when the server is unreachable, restarting or loading.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
               redis.exceptions.TryAgainError, OSError)
