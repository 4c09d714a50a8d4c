"""Credentials: device keys, operator and viewer tokens.

Each configured entry is `token`, `label=token`, or either with the token given
as `sha256:<hex>` so the environment need not hold it in plain text. Tokens
are kept only as SHA-256 digests and compared in constant time; only labels
ever reach logs or the audit trail.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

HASH_PREFIX = "sha256:"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Credential:
    label: str
    digest: bytes


class TokenSet:
    def __init__(self, entries: list[str], role: str):
        self.role = role
        self._credentials: list[Credential] = []
        for number, entry in enumerate(entries, start=1):
            label, sep, secret = entry.partition("=")
            if not sep:
                label, secret = f"{role}#{number}", entry
            if secret.startswith(HASH_PREFIX):
                digest = bytes.fromhex(secret[len(HASH_PREFIX):])
            else:
                digest = _digest(secret)
            self._credentials.append(Credential(label.strip(), digest))

    def __bool__(self) -> bool:
        return bool(self._credentials)

    def identify(self, token: str | None) -> str | None:
        """The label of the matching credential, or None. Constant time per entry."""
        if not token:
            return None
        presented = _digest(token)
        found = None
        for credential in self._credentials:
            if hmac.compare_digest(presented, credential.digest):
                found = credential.label
        return found


def generated_token() -> str:
    return secrets.token_urlsafe(24)


def bearer_token(headers) -> str | None:
    """The token of `Authorization: Bearer T`, or of `X-API-Key: T`."""
    header = headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("X-API-Key") or None


class Credentials:
    """The three roles. Operators may also read wherever viewers may."""

    def __init__(self, device_keys: list[str], operator_tokens: list[str],
                 viewer_tokens: list[str]):
        self.devices = TokenSet(device_keys, "device")
        self.operators = TokenSet(operator_tokens, "operator")
        self.viewers = TokenSet(viewer_tokens + operator_tokens if viewer_tokens else [], "viewer")

    def knows(self, token: str) -> bool:
        return any(s.identify(token) for s in (self.devices, self.operators, self.viewers))
