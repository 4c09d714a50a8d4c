"""Credentials: device keys, admin, operator and viewer tokens.

Each configured entry is `token`, `label=token`, or either with the token given
as `sha256:<hex>` so the environment need not hold it in plain text. Tokens
are kept only as SHA-256 digests and compared in constant time; only labels
ever reach logs or the audit trail.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

HASH_PREFIX = "sha256:"
# Where credentials come: device keys in X-API-Key (or Bearer), every other role in Bearer only.
API_KEY_HEADER = "X-API-Key"
AUTHORIZATION_HEADER = "Authorization"
# Every role a configured credential can have.
ROLES = ("device", "admin", "operator", "viewer")


def digest(token: str) -> bytes:
    """What a token is kept and compared as (SHA-256)."""
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
            kept = bytes.fromhex(secret[len(HASH_PREFIX):]) if secret.startswith(HASH_PREFIX) else digest(secret)
            self._credentials.append(Credential(label.strip(), kept))

    def __bool__(self) -> bool:
        return bool(self._credentials)

    def identify(self, token: str | None) -> str | None:
        """The label of the matching credential, or None. Constant time per entry."""
        return self.match(digest(token)) if token else None

    def match(self, presented: bytes) -> str | None:
        """The label of the credential with this SHA-256 digest, or None (every entry compared)."""
        found = None
        for credential in self._credentials:
            if hmac.compare_digest(presented, credential.digest):
                found = credential.label
        return found


def generated_token() -> str:
    return secrets.token_urlsafe(24)


def kept_token(path: Path) -> tuple[str, bool]:
    """The token kept in `path`, made (readable by the owner only) if absent.

    Returns (token, made_now), so a restart keeps the operator token a
    fresh install printed once.
    """
    try:
        token = path.read_text().strip()
        if token:
            return token, False
    except FileNotFoundError:
        pass
    token = generated_token()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token, True


def bearer_token(headers) -> str | None:
    """The token of `Authorization: Bearer T`: where operator and viewer tokens go."""
    header = headers.get(AUTHORIZATION_HEADER) or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def device_key(headers) -> str | None:
    """A device key: `X-API-Key: K`, or `Authorization: Bearer K`."""
    return headers.get(API_KEY_HEADER) or bearer_token(headers)


class Credentials:
    """The roles. Admins may also do whatever operators may; operators may also
    read wherever viewers may. Registered devices' own tokens live in the
    device registry, not here."""

    def __init__(self, device_keys: list[str], operator_tokens: list[str],
                 viewer_tokens: list[str], admin_tokens: list[str] = ()):
        admin_tokens = list(admin_tokens)
        self.devices = TokenSet(device_keys, "device")
        self.admins = TokenSet(admin_tokens, "admin")
        self.operators = TokenSet(operator_tokens + admin_tokens, "operator")
        self.viewers = TokenSet(viewer_tokens + operator_tokens + admin_tokens if viewer_tokens else [],
                                "viewer")
        self._by_role = {s.role: s for s in (self.devices, self.admins, self.operators, self.viewers)}

    def of(self, role: str) -> TokenSet:
        return self._by_role[role]
