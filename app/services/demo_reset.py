"""The demo reset: forget what a demo or the API tour left in the live state.

Each part of the system that holds demo leftovers registers how to clear
them (ad-hoc sensors, alerts, decisions, ...); `run` clears all of them and
says how many of each went. It runs as the control `reset_demo`, so it is
audited like every control.
"""
from __future__ import annotations

import logging
from typing import Callable

logger = logging.getLogger(__name__)


class DemoReset:
    def __init__(self) -> None:
        self._parts: list[tuple[str, Callable[[str], int]]] = []

    def register(self, name: str, clear: Callable[[str], int]) -> None:
        """`clear(operator)` forgets one kind of leftover and returns how many."""
        self._parts.append((name, clear))

    def run(self, operator: str) -> dict[str, int]:
        cleared = {name: clear(operator) for name, clear in self._parts}
        logger.warning("demo reset by %s: cleared %s", operator,
                       ", ".join(f"{n} {name}" for name, n in cleared.items()))
        return cleared
