"""The alert book's records as clients see them, and the event each transition publishes."""
from __future__ import annotations

import re

import pytest

from app import wire
from app.domain.clock import iso
from app.domain.events import AlertAdopted, AlertCleared, AlertRaised, AlertsReset, AlertUpdated
from app.errors import InvalidInput, NotFound
from app.domain.records import Alarm
from app.services.alerts import AlertBook

T0 = 1_700_000_000.0


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def book():
    clock, published = Clock(), []
    alerts = AlertBook(published.append, clock=clock)
    alerts.clock_, alerts.published_ = clock, published
    return alerts


def kinds(book):
    return [type(event).__name__ for event in book.published_]


def raise_ph(book, severity="warning", message="pH 9.2 above the warning limit 9", **fields):
    return book.raise_("Z.ph", "quality_ph", severity, message, **{"sensor_id": "Z.ph", "value": 9.2, **fields})


def test_a_raised_alarm_as_clients_see_it(book):
    alarm = wire.alert(raise_ph(book))
    assert alarm.pop("id")
    assert alarm == {
        "condition": "quality_ph", "subject": "Z.ph", "severity": "warning", "active": True,
        "acknowledged": False, "raised_at": "2023-11-14T22:13:20Z", "acknowledged_by": None,
        "acknowledged_at": None, "cleared_at": None, "shelved": False, "shelved_until": None,
        "shelved_by": None, "shelve_reason": None, "count": 1, "sensor_id": "Z.ph", "value": 9.2,
        "node_id": None, "metric": None, "threshold": None, "message": "pH 9.2 above the warning limit 9", "updated_at": "2023-11-14T22:13:20Z",
        "last_action": "raised", "last_action_by": "system", "state": "active",
        "alarm_state": "active_unacknowledged"}
    [event] = book.published_
    assert isinstance(event, AlertRaised) and event.alert.subject == "Z.ph"


def test_repeats_update_escalate_but_never_de_escalate(book):
    first = raise_ph(book)
    book.clock_.now += 10
    again = raise_ph(book, message="pH 9.3", value=9.3)
    assert again.id == first.id and again.count == 2 and again.value == 9.3
    assert again.message == "pH 9.3" and again.updated_at == iso(T0 + 10)
    assert kinds(book) == ["AlertRaised"]                      # a repeat is no transition
    book.clock_.now += 10
    worse = raise_ph(book, "critical", message="pH 10.4")
    assert worse.severity == "critical" and worse.escalated_at == iso(T0 + 20)
    assert worse.last_action == "escalated" and kinds(book) == ["AlertRaised", "AlertRaised"]
    milder = raise_ph(book, "major")
    assert milder.severity == "critical" and milder.count == 4
    assert kinds(book) == ["AlertRaised", "AlertRaised"]
    assert book.is_open("Z.ph", "quality_ph") and book.is_open("Z.ph", "quality_ph", "critical")
    assert not book.is_open("Z.ph", "quality_ph", "warning") and not book.is_open("Z.ph", "other")
    assert [(e.action, e.by) for e in book.get(first.id).events] == [
        ("raised", "system"), ("escalated", "system")]


def test_each_transition_publishes_its_event(book):
    alarm = raise_ph(book)
    book.acknowledge(alarm.id, "ops")
    book.clock_.now += 5
    cleared = book.clear("Z.ph", "quality_ph")
    assert cleared.cleared_at == iso(T0 + 5) and cleared.last_action == "cleared"
    assert book.clear("Z.ph", "quality_ph") is None             # nothing open any more
    assert book.clear("nothing", "here") is None
    assert kinds(book) == ["AlertRaised", "AlertUpdated", "AlertCleared"]
    assert isinstance(book.published_[-1], AlertCleared)
    assert book.acknowledge(alarm.id, "late").acknowledged_by == "ops"   # archived, still found
    assert kinds(book) == ["AlertRaised", "AlertUpdated", "AlertCleared"]


def test_active_alarms_list_before_cleared_ones_whatever_their_severity(book):
    book.raise_("a", "c", "warning", "w")
    crit = book.raise_("b", "c", "critical", "c")
    book.clear("b", "c")
    book.raise_("d", "c", "major", "m")
    assert [a.subject for a in book.listing(False)] == ["d", "a", "b"]
    assert [a.subject for a in book.open_alerts()] == ["a", "d"]
    assert book.get(crit.id).alarm_state == "cleared_unacknowledged"


def test_a_shelved_alarm_that_clears_acknowledged_is_archived_unshelved(book):
    alarm = raise_ph(book)
    book.acknowledge(alarm.id, "ops")
    shelved = book.shelve(alarm.id, "ops", 600, "cleaning")
    assert shelved.shelve_reason == "cleaning" and wire.alert(shelved)["shelved_until"] == iso(T0 + 600)
    assert shelved.last_action == "shelved" and shelved.last_action_by == "ops"
    archived = book.clear("Z.ph", "quality_ph")
    assert archived.alarm_state == "cleared_acknowledged" and archived.shelved is False
    assert archived.shelved_until is None and archived.shelved_by is None
    assert archived.shelve_reason is None
    assert [(e.action, e.by, e.detail) for e in book.get(alarm.id).events] == [
        ("raised", "system", None), ("acknowledged", "ops", None), ("shelved", "ops", "for 600 s: cleaning"),
        ("unshelved", "system", None), ("cleared", "system", None)]
    # The clearing is the transition clients are told of, not the unshelving it implies.
    assert archived.last_action == "cleared" and isinstance(book.published_[-1], AlertCleared)
    assert book.summary()["shelved"] == 0 and book.summary()["states"]["cleared_acknowledged"] == 1
    assert book.listing(False) == [] and [a.id for a in book.listing(True)] == [alarm.id]


def test_acknowledging_a_cleared_shelved_alarm_archives_it_unshelved(book):
    alarm = raise_ph(book)
    book.shelve(alarm.id, "ops", 600)
    assert book.clear("Z.ph", "quality_ph").shelved is True       # waits for its acknowledgement
    done = book.acknowledge(alarm.id, "lead")
    assert (done.alarm_state, done.shelved, done.last_action, done.last_action_by) == \
        ("cleared_acknowledged", False, "acknowledged", "lead")
    assert [e.action for e in book.get(alarm.id).events] == [
        "raised", "shelved", "cleared", "unshelved", "acknowledged"]


def test_shelving_limits_and_unknown_alarms_are_explained(book):
    alarm = raise_ph(book)
    with pytest.raises(InvalidInput) as error:
        book.shelve(alarm.id, "ops", 0.5)
    assert error.value.message == "invalid shelve"
    assert error.value.details == [{"field": "duration_s", "message": "seconds from 1 to 86400 (24 h), e.g. 3600"}]
    with pytest.raises(InvalidInput):
        book.shelve(alarm.id, "ops", 86_400.5)
    assert book.shelve(alarm.id, "ops", 1).shelved            # both limits are allowed
    assert wire.alert(book.shelve(alarm.id, "ops", 86_400))["shelved_until"] == iso(T0 + 86_400)
    assert book.get(alarm.id).events[-1].detail == "for 86400 s"
    assert book.unshelve(alarm.id, "ops").shelved is False
    before = len(book.published_)
    assert book.unshelve(alarm.id, "ops").shelved is False    # not shelved: nothing happens
    assert len(book.published_) == before
    with pytest.raises(NotFound) as missing:
        book.get("nope")
    assert missing.value.message == "no alert 'nope'"
    with pytest.raises(NotFound) as missing:
        book.unshelve("nope", "ops")
    assert missing.value.message == "no open alert 'nope' (cleared and acknowledged alerts cannot be shelved)"


def test_shelved_alarms_are_counted_apart_and_active_ones_per_severity(book):
    a = book.raise_("a", "c", "critical", "x")
    e = book.raise_("e", "c", "warning", "x")
    book.raise_("b", "c", "minor", "x")
    book.raise_("f", "c", "minor", "x")
    book.raise_("d", "c", "minor", "x")
    book.clear("d", "c")
    book.shelve(a.id, "ops", 60)
    book.shelve(e.id, "ops", 120)
    summary = book.summary()
    assert summary == {"states": {"active_unacknowledged": 2, "active_acknowledged": 0,
                                  "cleared_unacknowledged": 1, "cleared_acknowledged": 0},
                       "shelved": 2, "active_by_severity": {"critical": 0, "major": 0, "minor": 2, "warning": 0},
                       "unacknowledged": 3}
    book.clock_.now += 60                                         # the shelf ends exactly on time
    assert book.summary()["active_by_severity"]["critical"] == 1
    assert [e.alert.last_action for e in book.published_][-1] == "shelf_expired"


def test_reset_forgets_everything_and_says_who(book):
    a = raise_ph(book)
    book.acknowledge(a.id, "ops")
    book.clear("Z.ph", "quality_ph")
    book.raise_("b", "c", "minor", "x")
    assert book.reset("admin") == 2
    assert book.listing(True) == []
    assert book.published_[-1] == AlertsReset("admin", "2023-11-14T22:13:20Z")


def test_restore_reopens_what_was_open_with_its_recorded_fields(book):
    events = [
        {"id": "a-1", "subject": "s1", "condition": "quality_ph", "alarm_state": "active_acknowledged",
         "severity": "nonsense", "time": "2023-11-14T20:00:00Z", "acknowledged_by": "ops", "message": "pH 9.4",
         "sensor_id": "s1", "node_id": "Z", "metric": "ph", "value": 9.4, "threshold": 9.0},
        {"id": "a-1", "subject": "s1", "condition": "quality_ph", "alarm_state": "active_unacknowledged"},
        {"id": "a-2", "subject": "s2", "condition": "c", "state": "active", "raised_at": "2023-11-14T19:00:00Z",
         "sensor_id": "", "severity": "major"},
        {"id": "a-3", "subject": "s3", "condition": "c", "state": "cleared"},   # legacy cleared: done
        {"id": "a-4", "condition": "c", "state": "active"},                      # no subject: not ours
        {"subject": "s5", "condition": "c", "state": "active"},                  # no id
    ]
    assert book.restore(events) == 2
    by_id = {a.id: a for a in book.listing(False)}
    assert wire.alert(by_id["a-1"]) == {
        "id": "a-1", "condition": "quality_ph", "subject": "s1", "severity": "warning", "active": True,
        "acknowledged": True, "raised_at": "2023-11-14T20:00:00Z", "acknowledged_by": "ops",
        "acknowledged_at": None, "cleared_at": None, "shelved": False, "shelved_until": None,
        "shelved_by": None, "shelve_reason": None, "count": 1, "message": "pH 9.4", "sensor_id": "s1",
        "node_id": "Z", "metric": "ph", "value": 9.4, "threshold": 9.0, "restored": True,
        "state": "acknowledged", "alarm_state": "active_acknowledged"}
    assert (by_id["a-2"].alarm_state, by_id["a-2"].severity, by_id["a-2"].raised_at,
            by_id["a-2"].sensor_id, by_id["a-2"].message) == \
        ("active_unacknowledged", "major", "2023-11-14T19:00:00Z", None, "")
    # Restoring again (another start) reopens nothing twice; a new raise updates the restored alarm.
    assert book.restore(events) == 0 and len(book.listing(False)) == 2
    assert book.raise_("s1", "quality_ph", "critical", "pH 10.2").id == "a-1"
    assert book.published_ == [book.published_[0]] and isinstance(book.published_[0], AlertRaised)


def test_an_alarm_adopted_from_another_instance(book):
    held = {"id": "x-1", "subject": "s", "condition": "c", "severity": "major", "active": True,
            "acknowledged": False, "shelved": True, "shelved_until": "2023-11-14T22:14:20Z",
            "alarm_state": "active_unacknowledged", "message": "m"}
    book.adopt(held)
    [event] = book.published_
    assert isinstance(event, AlertAdopted) and event.alert.id == "x-1" and event.alert.shelved
    assert book.is_open("s", "c")
    book.clock_.now += 59
    assert book.expire_shelves() == []
    book.clock_.now += 1
    assert [a.id for a in book.expire_shelves()] == ["x-1"]       # its shelf ends here too
    book.adopt({**held, "shelved": False, "active": False, "acknowledged": True})
    assert not book.is_open("s", "c") and book.listing(False) == []
    book.adopt({**held, "shelved": False, "active": False, "acknowledged": True, "message": "again"})
    assert [a.message for a in book.listing(True)] == ["again"]    # one archived copy, the newest
    book.adopt({**held, "id": "x-2", "shelved": False, "active": False, "acknowledged": False})
    assert [a.alarm_state for a in book.listing(False)] == ["cleared_unacknowledged"]


@pytest.mark.parametrize("active, acknowledged, legacy, state", [
    (True, False, "active", "active_unacknowledged"), (True, True, "acknowledged", "active_acknowledged"),
    (False, False, "cleared", "cleared_unacknowledged"), (False, True, "cleared", "cleared_acknowledged"),
])
def test_both_state_names(active, acknowledged, legacy, state):
    alarm = Alarm("a-1", "s", "c", "warning", active=active, acknowledged=acknowledged)
    assert alarm.state == legacy and alarm.alarm_state == state


def test_acknowledging_many_skips_unknown_ids_anywhere_and_names_the_operator(book):
    ids = [book.raise_(f"s{n}", "c", "warning", "w").id for n in range(3)]
    done = book.acknowledge_many([ids[0], "nope", ids[1], ids[2]], "ops")
    assert [(a.id, a.acknowledged_by) for a in done] == [(i, "ops") for i in ids]


def test_a_cleared_alarm_that_returns_before_its_ack_is_raised_again_active_and_unseen(book):
    alarm = raise_ph(book, "critical")
    book.clock_.now += 5
    cleared = wire.alert(book.clear("Z.ph", "quality_ph"))
    assert (cleared["active"], cleared["state"], cleared["cleared_at"]) == (False, "cleared", iso(T0 + 5))
    book.clock_.now += 5
    back = wire.alert(raise_ph(book, "warning", message="pH 9.1", value=9.1))
    assert back["id"] == alarm.id and back["severity"] == "warning"   # the new occurrence's severity
    assert (back["active"], back["acknowledged"], back["cleared_at"], back["acknowledged_by"],
            back["acknowledged_at"]) == (True, False, None, None, None)
    assert (back["alarm_state"], back["last_action"], back["count"]) == ("active_unacknowledged", "reactivated", 2)
    # A return is a raise for the handlers (record, broadcast, re-plan), like the first one.
    assert kinds(book) == ["AlertRaised", "AlertCleared", "AlertRaised"]
    assert [e.action for e in book.get(alarm.id).events] == ["raised", "cleared", "reactivated"]


def test_an_acknowledgement_says_who_and_when(book):
    alarm = raise_ph(book)
    book.clock_.now += 7
    done = wire.alert(book.acknowledge(alarm.id, "ops"))
    assert (done["acknowledged"], done["acknowledged_by"], done["acknowledged_at"]) == (True, "ops", iso(T0 + 7))
    assert (done["state"], done["last_action"], done["last_action_by"]) == ("acknowledged", "acknowledged", "ops")
    assert kinds(book) == ["AlertRaised", "AlertUpdated"]


def test_an_unknown_severity_is_refused_naming_the_four(book):
    with pytest.raises(ValueError, match=r"^severity must be one of critical, major, minor, warning$"):
        book.raise_("s", "c", "info", "no such severity")
    assert book.listing(True) == [] and book.published_ == []


def test_restore_goes_past_done_alarms_and_older_alarms_of_a_condition_already_reopened(book):
    events = [   # newest first
        {"id": "a-9", "subject": "s9", "condition": "c", "alarm_state": "cleared_acknowledged"},
        {"id": "a-2", "subject": "s1", "condition": "c", "alarm_state": "active_unacknowledged", "message": "new"},
        {"id": "a-1", "subject": "s1", "condition": "c", "alarm_state": "active_unacknowledged", "message": "old"},
        {"id": "a-3", "subject": "s3", "condition": "c", "alarm_state": "cleared_unacknowledged"},
    ]
    assert book.restore(events) == 2
    assert {(a.id, a.message, a.alarm_state) for a in book.listing(False)} == {
        ("a-2", "new", "active_unacknowledged"), ("a-3", "", "cleared_unacknowledged")}


def test_another_instance_sees_an_alarm_exactly_as_the_one_that_changed_it():
    """What one instance shares (wire.alert) the other adopts and answers field for field."""
    clock, published = Clock(), []
    here = AlertBook(published.append, clock=clock)
    there = AlertBook(lambda event: None, clock=clock)
    here.raise_("Z1", "leak_suspected", "warning", "Leak suspected in South", node_id="Z1", sensor_id="Z1.flow",
                metric="flow", value=330.4, threshold=300.4, evidence={"rule": "balance", "excess_mld": 30.0},
                device_id="box-1")
    clock.now += 10
    alarm = here.raise_("Z1", "leak_suspected", "critical", "Leak suspected in South, growing", node_id="Z1",
                        sensor_id="Z1.flow", metric="flow", value=350.0, threshold=300.4,
                        evidence={"rule": "balance", "excess_mld": 50.0}, device_id="box-1")
    clock.now += 10
    here.acknowledge(alarm.id, "ops")
    here.shelve(alarm.id, "lead", 600, "crew on site")
    for event in published:                       # each transition, as share_alert sends it
        there.adopt(wire.alert(event.alert))
    shared = wire.alert(here.get(alarm.id))
    assert shared["escalated_at"] == iso(T0 + 10) and shared["shelved_until"] == iso(T0 + 620)
    assert wire.alert(there.get(alarm.id)) == shared
    assert wire.alert(there.listing(False)[0]) == shared and there.summary() == here.summary()
    clock.now += 600                              # the adopted shelf ends on time there too
    assert [a.last_action for a in there.expire_shelves()] == ["shelf_expired"]
    # Cleared and acknowledged there: archived, and still answered field for field.
    here.clear("Z1", "leak_suspected")
    there.adopt(wire.alert(here.get(alarm.id)))
    assert there.listing(False) == [] and wire.alert(there.get(alarm.id)) == wire.alert(here.get(alarm.id))
    # An alarm this instance reopened from history is `restored` there too once it changes.
    here.restore([{"id": "r-1", "subject": "s1", "condition": "quality_ph", "alarm_state": "active_unacknowledged",
                   "severity": "major", "raised_at": "2023-11-14T20:00:00Z", "message": "pH 9.4"}])
    there.adopt(wire.alert(here.acknowledge("r-1", "ops")))
    assert wire.alert(there.get("r-1"))["restored"] is True
    assert wire.alert(there.get("r-1")) == wire.alert(here.get("r-1"))


def test_an_adopted_alarm_with_only_the_essentials_answers_with_the_defaults(book):
    book.adopt({"id": "x-1", "subject": "s", "condition": "c", "severity": "minor", "active": True,
                "acknowledged": False})
    assert wire.alert(book.get("x-1")) == {
        "id": "x-1", "condition": "c", "subject": "s", "severity": "minor", "active": True,
        "acknowledged": False, "raised_at": None, "acknowledged_by": None, "acknowledged_at": None,
        "cleared_at": None, "shelved": False, "shelved_until": None, "shelved_by": None,
        "shelve_reason": None, "count": 0, "message": "", "sensor_id": None, "node_id": None,
        "metric": None, "value": None, "threshold": None, "state": "active",
        "alarm_state": "active_unacknowledged"}
    # A shelf end without the shelf (never sent so) does not shelve it.
    book.adopt({"id": "x-2", "subject": "s2", "condition": "c", "severity": "minor", "active": True,
                "acknowledged": False, "shelved": False, "shelved_until": "2023-11-14T22:14:20Z"})
    assert book.get("x-2").shelved is False and book.summary()["shelved"] == 0


def test_alarm_ids_are_never_reused_by_a_restarted_or_another_instance(book):
    # Two books started in the same second: a restart, or a second instance of a cluster.
    again = AlertBook(lambda event: None, clock=book.clock_)
    first, second = raise_ph(book).id, raise_ph(again).id
    assert first != second
    for alarm_id in (first, second):     # `<start second in hex><random>-<n>`, n counting from 1
        assert re.fullmatch(rf"{int(T0):x}[0-9a-f]{{6}}-1", alarm_id), alarm_id
    assert book.raise_("other", "c", "warning", "w").id == first[:-1] + "2"


def test_an_alarm_handed_out_is_a_snapshot_later_steps_do_not_change(book):
    """An answer being written (or a handler's event, on another thread) keeps the trail it was given."""
    alarm = raise_ph(book)
    seen = book.get(alarm.id)
    book.acknowledge(alarm.id, "ops")
    book.shelve(alarm.id, "ops", 60)
    assert [e["action"] for e in wire.alert(seen, events=True)["events"]] == ["raised"]
    assert (seen.acknowledged, seen.shelved, [e.action for e in book.published_[0].alert.events]) == \
        (False, False, ["raised"])
