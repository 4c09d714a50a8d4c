"""The network health score: 0-100, with the reasons it is not 100."""
from __future__ import annotations

from app.domain.records import Alarm

# Points lost per open alert by severity (every ISA-18.2 severity the alert book
# takes, app/services/alerts.py), per zone in shortfall, and for stale sensors
# (scaled by their share). Caps keep one kind of trouble from hiding others.
ALERT_PENALTY = {"warning": 5, "minor": 8, "major": 12, "critical": 20}
ALERT_CAP = 60
SHORTFALL_PENALTY = 10
SHORTFALL_CAP = 40
STALE_CAP = 30


def network_score(open_alerts: list[Alarm], zones_in_shortfall: list[str], stale: int,
                  sensors: int) -> tuple[int, list[str]]:
    reasons = []
    alert_loss = min(ALERT_CAP, sum(ALERT_PENALTY[a.severity] for a in open_alerts))
    if open_alerts:
        critical = sum(a.severity == "critical" for a in open_alerts)
        reasons.append(f"{len(open_alerts)} open alert(s), {critical} critical (-{alert_loss})")
    short_loss = min(SHORTFALL_CAP, SHORTFALL_PENALTY * len(zones_in_shortfall))
    if zones_in_shortfall:
        reasons.append(f"{len(zones_in_shortfall)} zone(s) in shortfall: "
                       f"{', '.join(zones_in_shortfall)} (-{short_loss})")
    stale_loss = round(STALE_CAP * stale / sensors) if sensors else 0
    if stale:
        reasons.append(f"{stale} of {sensors} sensors stale (-{stale_loss})")
    return max(0, 100 - alert_loss - short_loss - stale_loss), reasons
