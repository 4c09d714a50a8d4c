"""Device ingest over HTTP: thin, it parses the body and calls the pipeline.

A registered device's own token works here too, for its mapped sensors only;
a reading of a sensor that a device owns needs that device's token (403
otherwise, audited, nothing of the body applied).
"""
from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify

from app.api.common import json_body, services
from app.api.device_auth import check_owned_sensors, require_device_or_token
from app.api.openapi import DEVICE, document, responses
from app.api.schemas import BatchAccepted, IngestCreated, ReadingsBody
from app.errors import InvalidInput
from app.models import Reading

bp = Blueprint("ingest", __name__)


@bp.post("/api/ingest")
@document(json=Reading, resp=responses(HTTP_201=IngestCreated), tags=["ingest"], security=DEVICE)
@require_device_or_token
def ingest_one():
    """Ingest one reading."""
    body = json_body()
    if isinstance(body, list):
        raise InvalidInput("expected one reading", [{"field": "reading", "message":
                           "send a JSON object here; use POST /api/sensors for batches"}])
    check_owned_sensors([body])
    record = services().pipeline.ingest([body], source="http", batch=False)[0]
    # The hottest reply: json.dumps straight into a Response costs a third
    # less than jsonify's provider (bench/http_ingest.py, cProfile).
    return current_app.response_class(json.dumps(
        {"success": True, "message": "Data ingested successfully", "sensorId": record.sensor_id,
         "timestamp": record.timestamp}, separators=(",", ":")), 201, mimetype="application/json")


@bp.post("/api/sensors")
@document(json=ReadingsBody, resp=responses(HTTP_202=BatchAccepted), tags=["ingest"], security=DEVICE)
@require_device_or_token
def ingest_batch():
    """Ingest a batch of up to 5000 readings, all or nothing."""
    body = json_body()
    batch = True
    if isinstance(body, dict) and "readings" in body:
        body = body["readings"]
        if not isinstance(body, list):
            raise InvalidInput("invalid batch", [{"field": "readings", "message": "must be a list"}])
    elif isinstance(body, dict):
        body, batch = [body], False
    elif not isinstance(body, list):
        raise InvalidInput("invalid body", [{"field": "reading", "message":
                           "expected a reading, a list of readings or {\"readings\": [...]}"}])
    limit = services().settings.max_batch
    if len(body) > limit:
        raise InvalidInput(f"batch of {len(body)} readings exceeds the limit of {limit}",
                           [{"field": "readings", "message": f"at most {limit} readings per batch"}])
    if not body:
        raise InvalidInput("empty batch", [{"field": "readings", "message": "no readings"}])
    check_owned_sensors(body)
    records = services().pipeline.ingest(body, source="http", batch=batch)
    return jsonify(accepted=len(records)), 202
