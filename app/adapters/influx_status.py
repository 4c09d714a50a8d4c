"""What an InfluxDB write answer means for the batch: hold it, split it, or drop named points.

The policy follows Telegraf's InfluxDB output and goes further (nothing is
dropped without a count): network errors, timeouts, 5xx, 429, 401, 403 and
404 are the store's problem, not the data's, so the batch is held and retried.
413 means the body is too large: split it. 400 and 422 mean InfluxDB refused
some points; InfluxDB 1.x names each unparseable line and counts the points a
partial write dropped (`dropped=N`), and keeps the others.
"""
from __future__ import annotations

import email.utils
import json
import random
import re
import time
from dataclasses import dataclass

# Statuses that reject the data itself (the rest of the batch may be kept).
REJECTING = (400, 422)
TOO_LARGE = 413
# Longest Retry-After we honour; a misconfigured proxy must not park history for hours.
RETRY_AFTER_MAX_S = 300.0

# InfluxDB quotes the line as it was sent, unescaped: `unable to parse '<line>': <why>`.
_UNPARSEABLE = re.compile(r"unable to parse '(.*?)': ([^\n]*)")
_DROPPED = re.compile(r"dropped=(\d+)")


@dataclass(frozen=True)
class WriteFailure:
    """A write that did not go through: why, and what to do about it."""
    kind: str                 # "hold", "too_large" or "rejected"
    status: int | None        # HTTP status, None for network errors and timeouts
    message: str
    retry_after_s: float | None = None

    @property
    def unreachable(self) -> bool:
        return self.status is None


def classify(error: Exception) -> WriteFailure:
    status = getattr(error, "status", None)
    if not isinstance(status, int) or status == 0:
        return WriteFailure("hold", None, f"{type(error).__name__}: {str(error)[:300]}")
    message = error_message(getattr(error, "body", None)) or str(getattr(error, "reason", "") or status)
    if status == TOO_LARGE:
        return WriteFailure("too_large", status, message)
    if status in REJECTING:
        return WriteFailure("rejected", status, message)
    # 401/403 (token rotated), 404 (bucket or path wrong), 408, 429, 5xx and
    # anything unexpected: the points are fine, the store is not. Hold them.
    return WriteFailure("hold", status, message, retry_after(getattr(error, "headers", None)))


def error_message(body) -> str:
    """The error text of an InfluxDB answer: 1.x `{"error"}`, 2.x `{"code", "message"}`."""
    if body is None:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    try:
        doc = json.loads(text)
    except ValueError:
        return text.strip()[:2000]
    if isinstance(doc, dict):
        return str(doc.get("error") or doc.get("message") or text)[:2000]
    return text[:2000]


def retry_after(headers) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), bounded."""
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


@dataclass(frozen=True)
class Refusal:
    """What a 400/422 answer says about the points of the batch."""
    bad_lines: dict[str, str]   # line -> reason, for every line InfluxDB named
    dropped: int                # points a partial write dropped without naming them
    partial: bool               # InfluxDB kept the other points
    reason: str                 # label for history_points_rejected_total


def refusal(message: str) -> Refusal:
    bad = {match.group(1): _DROPPED.sub("", match.group(2)).strip()
           for match in _UNPARSEABLE.finditer(message)}
    dropped = sum(int(n) for n in _DROPPED.findall(message))
    return Refusal(bad, dropped, "partial write" in message, rejection_reason(message))


def rejection_reason(message: str) -> str:
    text = message.lower()
    if "field type conflict" in text:
        return "field_type_conflict"
    if "beyond retention" in text:
        return "beyond_retention"
    if "unable to parse" in text:
        return "unparseable"
    if "max-values-per-tag" in text or "max-series-per-database" in text:
        return "series_limit"
    return "invalid"


def backoff_s(attempt: int, base_s: float, cap_s: float, rand=random.random) -> float:
    """Capped exponential back-off with equal jitter: half fixed, half random.

    The fixed half keeps retries from hammering a store that is down; the
    random half keeps many servers from retrying in step.
    """
    ceiling = min(cap_s, base_s * (2 ** min(attempt, 30)))
    return ceiling / 2 + rand() * ceiling / 2
