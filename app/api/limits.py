"""Rate limits per device key (or operator token) and per IP, with flask-limiter.

The key is the credential's label when a valid one is presented, else the
client's address; so one noisy device cannot starve another, and
unauthenticated floods are limited per address. A limited request gets 429
with Retry-After. Storage is in memory unless RATELIMIT_STORAGE_URI points
at a shared store (e.g. redis://) for several instances.
"""
from __future__ import annotations

from flask import Blueprint, Flask, request
from flask_limiter import Limiter

from app.security import TokenSet, bearer_token


def _key(tokens: TokenSet):
    def key() -> str:
        label = tokens.identify(bearer_token(request.headers)) if tokens else None
        return f"{tokens.role}:{label}" if label else f"ip:{request.remote_addr}"
    return key


def install_limits(app: Flask, storage_uri: str, limited: list[tuple[Blueprint, str, TokenSet]]) -> Limiter:
    """Limit each (blueprint, limit, credentials) triple, e.g. ingest by device key."""
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    limiter = Limiter(key_func=lambda: request.remote_addr or "unknown", app=app, storage_uri=storage_uri,
                      default_limits=[], strategy="moving-window")
    for blueprint, limit, tokens in limited:
        limiter.limit(limit, key_func=_key(tokens))(blueprint)
    return limiter
