"""The port through which the registry keeps devices' MQTT logins in step.

The real adapter is Mosquitto's dynamic-security plugin (app/adapters/dynsec.py):
a client (username = device id, password = token) and a role with the
device's ACL. Without it (no broker, or MQTT_DYNSEC off) nothing is done and
the registry says so.
"""
from __future__ import annotations

from abc import ABC, abstractmethod


class BrokerAccounts(ABC):
    """Each call returns the login's state: `provisioned`, `pending` or `disabled`."""

    @abstractmethod
    def provision(self, device, token: str) -> str:
        """Create the device's login with this token, or give it this token (which
        disconnects a session opened with the old one)."""

    @abstractmethod
    def update_acl(self, device) -> str:
        """The device's topics changed (its sensors or actuators)."""

    @abstractmethod
    def remove(self, device_id: str) -> str:
        """Delete the login and disconnect the device."""


class NoBrokerAccounts(BrokerAccounts):
    def provision(self, device, token: str) -> str:
        return "disabled"

    def update_acl(self, device) -> str:
        return "disabled"

    def remove(self, device_id: str) -> str:
        return "disabled"
