"""The message bus: isolation of handlers, no re-entry, and the one handler table."""
import inspect

import pytest
from prometheus_client import CollectorRegistry

import app.domain.events as events
from app.bus import MessageBus
from app.domain.events import AlertRaised, Event, PlanChanged


@pytest.fixture
def bus():
    return MessageBus(CollectorRegistry())


def errors(bus, event, handler):
    return bus.errors.labels(event=event, handler=handler)._value.get()


def test_a_failing_handler_is_counted_and_the_others_still_run(bus):
    seen = []

    def broken(event):
        raise RuntimeError("bug")
    bus.subscribe(PlanChanged, broken)
    bus.subscribe(PlanChanged, lambda event: seen.append(event.view))
    bus.publish(PlanChanged({"status": "optimal"}))   # does not raise
    assert seen == [{"status": "optimal"}]
    name = broken.__qualname__
    assert errors(bus, "PlanChanged", name) == 1


def test_an_event_raised_while_handling_is_queued_not_reentered(bus):
    order = []

    def on_plan(event):
        order.append("plan:start")
        bus.publish(AlertRaised({"id": "a"}))
        order.append("plan:end")
    bus.subscribe(PlanChanged, on_plan)
    bus.subscribe(PlanChanged, lambda event: order.append("plan:second"))
    bus.subscribe(AlertRaised, lambda event: order.append("alert"))
    bus.publish(PlanChanged({}))
    assert order == ["plan:start", "plan:end", "plan:second", "alert"]


def test_the_bus_refuses_what_is_not_an_event(bus):
    with pytest.raises(TypeError):
        bus.publish({"kind": "alert"})


def test_every_event_has_its_handlers_in_the_one_table():
    """app/handlers.py lists every event; no event is raised into the void."""
    from app.handlers import handlers_for

    class Anything:
        def __getattr__(self, name):
            return self
    table = handlers_for(Anything())
    declared = {cls for _, cls in inspect.getmembers(events, inspect.isclass)
                if issubclass(cls, Event) and cls is not Event}
    assert declared == set(table)
    assert all(table[cls] for cls in declared)
