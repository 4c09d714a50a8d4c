"""The `/control` namespace: operators send controls over Socket.IO."""
from __future__ import annotations

from flask import request
from flask_socketio import Namespace
from pydantic import ValidationError

from app import wire
from app.errors import DomainError, InvalidInput, error_envelope
from app.models import ControlRequest
from app.realtime.live import token_from
from app.security import TokenSet
from app.services.controls import ControlService
from app.services.pipeline import validation_details


class ControlNamespace(Namespace):
    def __init__(self, namespace: str, controls: ControlService, operators: TokenSet):
        super().__init__(namespace)
        self.controls = controls
        self.operators = operators
        self._who: dict[str, str] = {}

    def on_connect(self, auth=None):
        label = self.operators.identify(token_from(auth))
        if label is None:
            raise ConnectionRefusedError("unauthorized: an operator token is required")
        self._who[request.sid] = label

    def on_disconnect(self, reason=None):
        self._who.pop(request.sid, None)

    def on_control(self, data=None):
        """Same reply as POST /api/control: `{"ok": true, "control"}` or the error envelope."""
        try:
            command = ControlRequest.model_validate(data)
            applied = self.controls.apply(command, self._who[request.sid], request.remote_addr)
            return {"ok": True, "control": wire.control(applied)}
        except ValidationError as error:
            return error_envelope(InvalidInput.status, "invalid control", validation_details(error, batch=False))
        except DomainError as error:
            return error.envelope()
