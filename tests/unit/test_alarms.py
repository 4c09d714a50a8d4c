"""ISA-18.2 alarm states, shelving and the summary, on the alert book alone (fake clock)."""
from __future__ import annotations

import pytest

from app import wire
from app.domain.clock import ManualClock
from app.domain.events import AlertsReset
from app.errors import InvalidInput, NotFound
from app.services.alerts import AlertBook


@pytest.fixture
def book():
    clock = ManualClock(1000.0)
    events, records, scheduled = [], [], []

    def publish(event):   # what the handlers broadcast and record
        if isinstance(event, AlertsReset):
            events.append(("alerts_reset", {"by": event.by}))
        else:
            events.append(("alert", event.alert))
            records.append(event.alert)
    alerts = AlertBook(publish, clock=clock, schedule=lambda delay, run: scheduled.append((delay, run)))
    alerts.clock_, alerts.events_, alerts.records_, alerts.scheduled_ = clock, events, records, scheduled
    return alerts


def raise_ph(book, severity="warning"):
    return book.raise_("Z_SOUTH.ph", "quality_ph", severity, "pH 9.2 above the warning limit 9",
                       node_id="Z_SOUTH", metric="ph", value=9.2, threshold=9.0)


def test_clear_before_ack_waits_cleared_unacknowledged_then_ack_archives(book):
    alarm = raise_ph(book)
    assert alarm.alarm_state == "active_unacknowledged" and alarm.state == "active"
    cleared = book.clear("Z_SOUTH.ph", "quality_ph")
    assert cleared.alarm_state == "cleared_unacknowledged" and cleared.state == "cleared"
    assert not book.is_open("Z_SOUTH.ph", "quality_ph")          # the condition is gone ...
    assert [a.id for a in book.listing(False)] == [alarm.id]   # ... but the operator still sees it
    assert book.open_alerts() == []                                # planning and health do not
    done = book.acknowledge(alarm.id, "ops")
    assert done.alarm_state == "cleared_acknowledged" and done.acknowledged_by == "ops"
    assert book.listing(False) == []
    assert [a.id for a in book.listing(True)] == [alarm.id]


def test_ack_before_clear_and_a_return_before_ack_reactivates(book):
    alarm = raise_ph(book)
    assert book.acknowledge(alarm.id, "ops").alarm_state == "active_acknowledged"
    assert book.acknowledge(alarm.id, "other").acknowledged_by == "ops"   # idempotent
    assert book.clear("Z_SOUTH.ph", "quality_ph").alarm_state == "cleared_acknowledged"
    again = raise_ph(book)
    assert again.id != alarm.id                  # archived: a new occurrence is a new alarm
    book.clear("Z_SOUTH.ph", "quality_ph")
    back = raise_ph(book, "critical")                  # returns before anyone acknowledged the clearing
    assert back.id == again.id and back.alarm_state == "active_unacknowledged"
    assert back.severity == "critical"
    assert [name for name, _ in book.events_] == ["alert"] * 6     # the repeated ack sends nothing


def test_four_severities_and_the_summary_counts_each_state(book):
    for n, severity in enumerate(("critical", "major", "minor", "warning")):
        book.raise_(f"s{n}", "c", severity, severity)
    with pytest.raises(ValueError):
        book.raise_("x", "c", "info", "no such severity")
    [crit, major, minor, warn] = [a.id for a in book.listing(False)]   # most severe first
    book.acknowledge(major, "ops")
    book.clear("s2", "c")
    book.acknowledge(crit, "ops")
    book.clear("s0", "c")                              # acknowledged and cleared: archived
    book.shelve(warn, "ops", 600)
    summary = book.summary()
    assert summary["states"] == {"active_unacknowledged": 0, "active_acknowledged": 1,
                                 "cleared_unacknowledged": 1, "cleared_acknowledged": 1}
    assert summary["shelved"] == 1 and summary["unacknowledged"] == 1
    assert summary["active_by_severity"] == {"critical": 0, "major": 1, "minor": 0, "warning": 0}
    assert [a.id for a in book.listing(False, state="shelved")] == [warn]
    assert [a.id for a in book.listing(False, state="cleared_unacknowledged")] == [minor]


def test_a_shelved_alarm_returns_by_itself_and_each_step_is_audited(book):
    alarm = raise_ph(book)
    shelved = book.shelve(alarm.id, "ops", 900, "sensor being cleaned")
    assert shelved.shelved and shelved.shelved_by == "ops"
    assert wire.alert(shelved)["shelved_until"] == "1970-01-01T00:31:40Z"     # 1000 s + 900 s
    assert book.scheduled_[0][0] == 900                            # the return is scheduled
    assert book.is_open("Z_SOUTH.ph", "quality_ph")                # still active underneath
    book.clock_.advance(899)
    assert book.expire_shelves() == []
    book.clock_.advance(1)
    delay, run = book.scheduled_[0]
    run()                                                          # the scheduled expiry fires
    back = book.get(alarm.id)
    assert not back.shelved and back.shelved_until is None
    assert [(e.action, e.by) for e in back.events] == [
        ("raised", "system"), ("shelved", "ops"), ("shelf_expired", "system")]
    assert [r.last_action for r in book.records_] == ["raised", "shelved", "shelf_expired"]


def test_a_shelf_also_expires_on_read_and_can_be_lifted_early(book):
    alarm = raise_ph(book)
    book.shelve(alarm.id, "ops", 60)
    book.clock_.advance(61)
    assert book.summary()["shelved"] == 0                           # reads check the time too
    book.shelve(alarm.id, "ops", 60)
    assert not book.unshelve(alarm.id, "lead").shelved
    assert wire.alert(book.get(alarm.id), events=True)["events"][-1] == {
        "action": "unshelved", "by": "lead", "at": "1970-01-01T00:17:41Z"}


def test_shelve_bounds_and_unknown_ids(book):
    alarm = raise_ph(book)
    for duration in (0, 86_401):
        with pytest.raises(InvalidInput) as error:
            book.shelve(alarm.id, "ops", duration)
        assert "duration_s" == error.value.details[0]["field"]
    with pytest.raises(NotFound):
        book.acknowledge("nope", "ops")
    book.acknowledge(alarm.id, "ops")
    book.clear("Z_SOUTH.ph", "quality_ph")
    with pytest.raises(NotFound):
        book.shelve(alarm.id, "ops", 60)          # archived alarms cannot be shelved


def test_acknowledge_many_skips_unknown_ids(book):
    ids = [book.raise_(f"s{n}", "c", "warning", "w").id for n in range(3)]
    done = book.acknowledge_many([*ids, "nope"], "ops")
    assert [a.id for a in done] == ids and all(a.acknowledged for a in done)


def test_restart_restores_cleared_unacknowledged_and_legacy_states(book):
    events = [   # newest first, as history returns them
        {"id": "a-1", "subject": "s1", "condition": "c", "state": "cleared",
         "alarm_state": "cleared_unacknowledged", "severity": "major"},
        {"id": "a-2", "subject": "s2", "condition": "c", "state": "acknowledged"},   # older record
        {"id": "a-3", "subject": "s3", "condition": "c", "state": "cleared", "alarm_state": "cleared_acknowledged"},
    ]
    assert book.restore(events) == 2
    states = {a.id: a.alarm_state for a in book.listing(False)}
    assert states == {"a-1": "cleared_unacknowledged", "a-2": "active_acknowledged"}
