"""The simulator's endpoints: start, stop, state, trigger events, set the baseline."""
from __future__ import annotations

from flask import Blueprint, jsonify

from app import wire
from app.api.common import json_body, parse_model, require_operator, require_viewer, services
from app.api.openapi import OPERATOR, VIEWER, document, responses
from app.api.schemas import SimulationBaselineSet, SimulationEventCreated, SimulationState
from app.errors import Conflict
from app.models import ErrorEnvelope
from app.models import SimulationBaseline, SimulationEvent

bp = Blueprint("simulation", __name__, url_prefix="/api/simulation")


def _simulator():
    simulator = services().simulator
    if simulator is None:
        raise Conflict("the simulator needs a network model with sensors")
    return simulator


@bp.get("")
@document(resp=responses(HTTP_200=SimulationState, HTTP_409=ErrorEnvelope), tags=["simulator"],
          security=VIEWER)
@require_viewer
def state():
    """The simulator's state and active events."""
    return jsonify(wire.simulation(_simulator().state()))


@bp.post("/start")
@document(resp=responses(HTTP_200=SimulationState, HTTP_409=ErrorEnvelope), tags=["simulator"],
          security=OPERATOR)
@require_operator
def start():
    """Start the simulator."""
    started = _simulator().resume()
    return jsonify(ok=True, started=started, **wire.simulation(_simulator().state()))


@bp.post("/stop")
@document(resp=responses(HTTP_200=SimulationState, HTTP_409=ErrorEnvelope), tags=["simulator"],
          security=OPERATOR)
@require_operator
def stop():
    """Stop the simulator."""
    _simulator().stop()
    return jsonify(ok=True, **wire.simulation(_simulator().state()))


@bp.post("/trigger")
@document(json=SimulationEvent, resp=responses(HTTP_201=SimulationEventCreated, HTTP_409=ErrorEnvelope),
          tags=["simulator"], security=OPERATOR)
@require_operator
def trigger():
    """Trigger a simulated event."""
    request = parse_model(SimulationEvent, json_body())
    event = _simulator().simulation.trigger(request.event, request.target, request.magnitude,
                                            request.duration_s)
    return jsonify(ok=True, event=wire.simulation_event(event.to_dict())), 201


@bp.post("/baseline")
@document(json=SimulationBaseline, resp=responses(HTTP_200=SimulationBaselineSet, HTTP_409=ErrorEnvelope),
          tags=["simulator"], security=OPERATOR)
@require_operator
def baseline():
    """Scale a zone's (or the city's) base demand."""
    request = parse_model(SimulationBaseline, json_body())
    _simulator().simulation.set_baseline(request.target, request.factor)
    return jsonify(ok=True, target=request.target, factor=request.factor)
