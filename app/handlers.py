"""Every domain event and all of its consequences, in one place.

`handlers_for(services)` is the whole table: reading down an event's list
tells you everything that happens when it is raised, in order. Publishing to
`/live`, to the devices over MQTT and to history are handlers like the rest.
The bus (app/bus.py) isolates them: one failing handler is logged and
counted, and the others still run.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from app.domain.events import (AlertAdopted, AlertCleared, AlertRaised, AlertsReset, AlertUpdated,
                               CommandStateChanged, ControlAdopted, ControlApplied, DecisionMade,
                               DeviceChanged, DevicePresence, DeviceReturned, Event, ForecastUpdated,
                               HealthChanged, PlanChanged, ReadingsAccepted, ReadingsReplicated,
                               SourceRefreshed)

from app import wire
from app.domain.records import ControlMessage, Reading
from app.services.controls import LOCAL_ACTIONS

if TYPE_CHECKING:
    from app.bootstrap import Services

logger = logging.getLogger(__name__)

Handler = Callable[[Event], None]


def _batch(event: ReadingsAccepted | ReadingsReplicated) -> list[Reading]:
    """The readings analysis sees: the live values of an accepted batch, or a replicated one."""
    return event.live if isinstance(event, ReadingsAccepted) else event.records


def handlers_for(s: Services) -> dict[type[Event], list[Handler]]:
    live = s.broadcaster
    clock = s.clock

    # -- history -------------------------------------------------------------
    def write_readings(event: ReadingsAccepted) -> None:
        s.history.write_readings(event.records)

    def record_alert(event: AlertRaised | AlertUpdated | AlertCleared) -> None:
        """Each alert transition as an `alert` point: enough to rebuild open alerts at start-up."""
        alert = event.alert
        s.history.write_event(
            "alert", {"condition": alert.condition, "severity": alert.severity,
                      "state": alert.state, "node_id": alert.node_id or ""},
            {"id": alert.id, "subject": alert.subject, "message": alert.message,
             "sensor_id": alert.sensor_id or "", "metric": alert.metric or "",
             "value": float(alert.value) if alert.value is not None else None,
             "threshold": float(alert.threshold) if alert.threshold is not None else None,
             "raised_at": alert.raised_at, "acknowledged_by": alert.acknowledged_by or "",
             # ISA-18.2 state and who did what: the alarm audit trail.
             "alarm_state": alert.alarm_state, "action": alert.last_action or "",
             "by": alert.last_action_by or "", "shelved_until": wire.iso_time(alert.shelved_until) or ""},
            clock())

    def record_source_refresh(event: SourceRefreshed) -> None:
        """An operator's fetch-now joins the audit trail (the `control` measurement)."""
        result = event.status["status"]
        logger.info("operator %s refreshed source %s: %s", event.operator, event.source_id, result)
        s.history.write_event(
            "control", {"action": "refresh_source", "target": event.source_id,
                        "operator": event.operator, "origin": "operator"},
            {"value": "", "reason": (event.status.get("last_error") or {}).get("reason", "")
             if result != "ok" else "", "result": result, "source_ip": event.source_ip or ""},
            clock())

    def record_control(event: ControlApplied) -> None:
        control = event.control
        s.history.write_event(
            "control", {"action": control["action"], "target": control["target"] or "",
                        "operator": control["operator"], "origin": control["origin"]},
            {"value": str(control["value"]), "reason": control["reason"] or "",
             "result": control["result"], "source_ip": event.source_ip or ""}, clock())

    # -- metrics -----------------------------------------------------------------------
    def count_solve(event: PlanChanged) -> None:
        """Each planning run counts in bhs_routing_solves_total; its time is the last solve's."""
        s.metrics.solved(event.view.solve_ms)

    # -- /live -----------------------------------------------------------------------
    def broadcast_readings(event: ReadingsAccepted) -> None:
        if event.live:
            live.publish(event.live)

    def broadcast_alert(event: AlertRaised | AlertUpdated | AlertCleared) -> None:
        live.emit("alert", wire.alert(event.alert))

    def broadcast_alerts_reset(event: AlertsReset) -> None:
        live.emit("alerts_reset", {"by": event.by, "timestamp": event.timestamp})

    def broadcast_plan(event: PlanChanged) -> None:
        live.emit("routing_update", wire.routing(event.view))

    def broadcast_decision(event: DecisionMade) -> None:
        live.emit("decision", wire.decision(event.decision))

    def broadcast_control(event: ControlApplied) -> None:
        live.emit("control_update", wire.control(event.control))

    def broadcast_health(event: HealthChanged) -> None:
        live.emit("health_update", wire.health(event.health))

    def broadcast_forecast(event: ForecastUpdated) -> None:
        live.emit("prediction_update", wire.forecast(event.view))

    def broadcast_device(event: DeviceChanged) -> None:
        live.emit("device_update", wire.device(event.device))

    def broadcast_command(event: CommandStateChanged) -> None:
        live.emit("command_update", wire.command(event.command))

    # -- devices (MQTT or the in-memory command port) ------------------------------------
    def command_device(event: ControlApplied) -> None:
        """Send the control to its device. A registered device's command is named on the
        control itself (`command`: id, device, state), so the operator's answer and the
        `control_update` broadcast after this handler both carry it."""
        control = event.control
        if control["action"] in LOCAL_ACTIONS:
            return   # the server's own state: nothing for a device
        delivery = s.commands.publish(control["target"] or "mode", ControlMessage(
            control["id"], control["action"], control["target"], control["value"], control["timestamp"]))
        if delivery is not None:
            control["command"] = wire.command_summary(delivery)

    # -- live views every instance keeps ---------------------------------------------
    def index_sensors(event: ReadingsAccepted | ReadingsReplicated) -> None:
        s.sensor_index.learn(_batch(event))

    def update_wqi_stations(event: ReadingsAccepted | ReadingsReplicated) -> None:
        s.wqi_stations.observe(_batch(event))

    # -- cluster: what this instance did, for the others ------------------------------
    def replicate(event: ReadingsAccepted) -> None:
        """Append the batch to the cluster's stream for the other instances."""
        if s.cluster is not None:
            s.cluster.replicator.publish(event.live)

    def share_alert(event: AlertRaised | AlertCleared | AlertUpdated) -> None:
        if s.shared is not None:
            s.shared.share("alert", wire.alert(event.alert))   # AlertBook.adopt reads it back

    def share_control(event: ControlApplied) -> None:
        if s.shared is not None and event.control["origin"] == "operator":
            s.shared.share("control", event.control)

    def share_plan(event: PlanChanged) -> None:
        """The leader's plan goes to the other instances too."""
        if s.shared is not None:
            s.shared.share_plan(wire.routing(event.view), event.plan)

    def share_decision(event: DecisionMade) -> None:
        if s.shared is not None:
            s.shared.share("decisions", [wire.decision(event.decision)])

    # -- analysis (in a cluster, only the leader's) ----------------------------------------
    def check_thresholds(event: ReadingsAccepted | ReadingsReplicated) -> None:
        if s.leading():
            s.thresholds.observe(_batch(event))

    def learn_demand(event: ReadingsAccepted | ReadingsReplicated) -> None:
        if s.leading():
            s.forecaster.observe_records(_batch(event))

    def watch_for_replan(event: ReadingsAccepted | ReadingsReplicated) -> None:
        if s.leading():
            s.engine.observe(_batch(event))

    def clear_offline(event: ReadingsAccepted | ReadingsReplicated) -> None:
        if s.leading():
            s.monitor.observe(_batch(event))

    def replan_after_control(event: ControlApplied | ControlAdopted) -> None:
        """An operator's control changes the constraints (the engine's own commands do not)."""
        if event.control.get("origin") == "operator":
            s.engine.on_control(event.control)

    def replan_after_alert(event: AlertRaised | AlertCleared | AlertUpdated | AlertAdopted) -> None:
        """Critical quality at a source, raised or cleared, changes which sources may be used."""
        s.engine.on_alert(event.alert)

    def presence_alert(event: DevicePresence) -> None:
        """An unexpected `offline` (a device's last will) raises an alert; `online` clears it."""
        if event.state == "offline" and event.news:
            s.alerts.raise_(event.device_id, "device_offline", "warning",
                            f"Device {event.device_id} went offline", node_id=None, sensor_id=None,
                            metric="status", value=0.0, threshold=None, device_id=event.device_id)
        elif event.state == "online":
            s.alerts.clear(event.device_id, "device_offline")

    def resend_to_returning_device(event: DevicePresence) -> None:
        if s.mqtt_devices is not None:
            s.mqtt_devices.on_presence(event.device_id, event.state)

    def resend_to_returned_device(event: DeviceReturned) -> None:
        if s.device_commands is not None:
            s.device_commands.resend(event.device_id)

    return {
        ReadingsAccepted: [write_readings, index_sensors, update_wqi_stations, replicate,
                           check_thresholds, learn_demand, watch_for_replan, clear_offline,
                           broadcast_readings],
        ReadingsReplicated: [index_sensors, update_wqi_stations, check_thresholds, learn_demand,
                             watch_for_replan, clear_offline],
        SourceRefreshed: [record_source_refresh],
        AlertRaised: [record_alert, broadcast_alert, share_alert, replan_after_alert],
        AlertUpdated: [record_alert, broadcast_alert, share_alert, replan_after_alert],
        AlertCleared: [record_alert, broadcast_alert, share_alert, replan_after_alert],
        AlertAdopted: [replan_after_alert],
        AlertsReset: [broadcast_alerts_reset],
        PlanChanged: [count_solve, broadcast_plan, share_plan],
        DecisionMade: [broadcast_decision, share_decision],
        ControlApplied: [record_control, command_device, broadcast_control, share_control,
                         replan_after_control],
        ControlAdopted: [replan_after_control],
        CommandStateChanged: [broadcast_command],
        DeviceChanged: [broadcast_device],
        DevicePresence: [presence_alert, resend_to_returning_device],
        DeviceReturned: [resend_to_returned_device],
        HealthChanged: [broadcast_health],
        ForecastUpdated: [broadcast_forecast],
    }
