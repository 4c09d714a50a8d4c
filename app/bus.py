"""The message bus: hands each domain event to the handlers registered for it.

Rules every publisher can rely on:
- a failing handler is logged and counted in `handler_errors_total{event,handler}`;
  it never fails the caller and never keeps the event from the other handlers;
- an event raised while a handler runs is queued and handled after the current
  event's handlers, never re-entering the publisher (engine -> alert -> engine);
- the queue is per thread (per greenlet under eventlet/gevent), so a request's
  events are handled before that request answers.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable

from prometheus_client import CollectorRegistry, Counter

from app.domain.events import Event

logger = logging.getLogger(__name__)

Handler = Callable[[Event], None]


def handler_name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


class _Dispatch:
    """One thread's (or greenthread's) events waiting for their handlers."""

    __slots__ = ("queue", "handling")

    def __init__(self):
        self.queue: deque[Event] = deque()
        self.handling = False


class MessageBus:
    def __init__(self, registry: CollectorRegistry):
        self._handlers: dict[type[Event], list[Handler]] = {}
        self._local = threading.local()
        self.errors = Counter("handler_errors", "Event handlers that raised, by event and handler",
                              ["event", "handler"], registry=registry)

    def subscribe(self, event_type: type[Event], handler: Handler) -> None:
        self._handlers.setdefault(event_type, []).append(handler)

    def handlers(self, event_type: type[Event]) -> list[Handler]:
        return list(self._handlers.get(event_type, ()))

    def publish(self, event: Event) -> None:
        if not isinstance(event, Event):
            raise TypeError(f"not a domain event: {event!r}")
        # One thread-local read per event: under eventlet each access to a
        # threading.local swaps a greenthread's dict in (eventlet.corolocal),
        # and this runs on every ingest request.
        state = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _Dispatch()
        queue = state.queue
        queue.append(event)
        if state.handling:
            return   # the loop below, further up this stack, takes it
        state.handling = True
        try:
            while queue:
                self._dispatch(queue.popleft())
        finally:
            state.handling = False

    def _dispatch(self, event: Event) -> None:
        name = type(event).__name__
        for handler in self._handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                label = handler_name(handler)
                self.errors.labels(event=name, handler=label).inc()
                logger.exception("handler %s failed on %s", label, name)
