"""Shared operator state: alarms, controls, the plan, decisions and the device registry.

Each change is made where it happens (an operator's ack on whichever instance
served it, the leader's plan and decisions) and recorded and broadcast there,
as in a single process. Then it is appended to a second shared log, and every
other instance adopts it into its own services without recording or
broadcasting it again. A restarted instance rebuilds this state from the log,
like the readings, before it reports ready.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Callable

from app.services.cluster.replication import Replicator

logger = logging.getLogger(__name__)

KINDS = ("alert", "control", "plan", "decisions", "device", "device_deleted")


class SharedState:
    def __init__(self, adopters: dict[str, Callable[[object], None]]):
        unknown = set(adopters) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown shared state kinds: {sorted(unknown)}")
        self.adopters = adopters
        self.replicator: Replicator | None = None    # set by the composition root
        self.latest_plan: dict | None = None          # the leader's last plan, for a takeover
        self._adopting = threading.local()

    # -- the changing side -------------------------------------------------------
    def share(self, kind: str, data) -> None:
        """Send a local change to the other instances (not one that is being adopted)."""
        if getattr(self._adopting, "active", False) or self.replicator is None:
            return
        self.replicator.publish([{"kind": kind, "data": data}])

    def share_plan(self, view: dict, plan) -> None:
        # RoutingPlan.from_dict takes this back on a new leader.
        body = {"view": view, "plan": dataclasses.asdict(plan) if plan is not None else None}
        self.latest_plan = body
        self.share("plan", body)

    # -- the adopting side --------------------------------------------------------
    def apply(self, records: list[dict], origin: str) -> None:
        """Replicator callback: changes another instance made, in order."""
        self._adopting.active = True
        try:
            for record in records:
                kind, data = record["kind"], record["data"]
                if kind == "plan":
                    self.latest_plan = data
                adopt = self.adopters.get(kind)
                if adopt is None:
                    continue
                try:
                    adopt(data)
                except Exception:   # one odd change must not stop the others
                    logger.exception("adopting shared %s failed", kind)
        finally:
            self._adopting.active = False
