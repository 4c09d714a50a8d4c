"""Ingest credentials: a registered device's own token, or the legacy shared DEVICE_KEYS."""
from __future__ import annotations

from functools import wraps

from flask import g

from app.api.common import caller, require_device, services


def require_device_or_token(view):
    """A registered device's token (then `g.device`), else the legacy device-key check.

    Both read the request's one credential check (`caller()`).
    """
    legacy = require_device(view)

    @wraps(view)
    def wrapper(*args, **kwargs):
        device = caller().device
        g.device = device
        if device is not None:
            g.principal = f"device:{device.id}"
            return view(*args, **kwargs)
        return legacy(*args, **kwargs)
    return wrapper


def check_owned_sensors(items) -> None:
    """403 (audited) unless every reading's sensor is the writer's to write."""
    ids = [item.get("sensor_id", item.get("sensorId")) for item in items if isinstance(item, dict)]
    services().devices.check_writes(g.get("device"), [i for i in ids if isinstance(i, str)], "http ingest")
