"""Metrics: counts on a registry of their own, rates from the sampled totals."""
from __future__ import annotations

from prometheus_client import REGISTRY

from app.services.metrics import RATE_WINDOW_S, Metrics, readings_summary


class ManualClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rates_are_the_change_of_the_totals_since_the_oldest_note_in_the_window():
    clock = ManualClock()
    metrics = Metrics(monotonic=clock)
    metrics.accepted("http", 7)
    metrics.rates.note()
    for _ in range(RATE_WINDOW_S):
        clock.now += 1
        metrics.accepted("http", 30)
        metrics.mqtt_message(2)
        metrics.rates.note()
    summary = readings_summary(metrics.read(), metrics, "ingested")
    assert summary["total"] == 7 + 30 * RATE_WINDOW_S and summary["by_source"] == {"http": summary["total"]}
    assert summary["per_second"] == 30.0
    assert metrics.mqtt_rate() == 2.0
    clock.now += 5 * RATE_WINDOW_S     # quiet since: older notes leave the window
    metrics.rates.note()
    clock.now += 1
    assert readings_summary(metrics.read(), metrics, "ingested")["per_second"] == 0.0


def test_no_rate_before_a_second_of_notes():
    metrics = Metrics(monotonic=ManualClock())
    metrics.accepted("mqtt", 5)
    assert readings_summary(metrics.read(), metrics, "ingested")["per_second"] == 0.0


def test_counts_stay_off_the_global_default_registry():
    Metrics().accepted("http", 3)
    assert REGISTRY.get_sample_value("bhs_readings_total", {"outcome": "ingested", "source": "http"}) is None


def test_solve_time_is_the_last_solves():
    metrics = Metrics()
    assert metrics.read().value("bhs_routing_solve_seconds", None) is None
    metrics.solved(12.5)
    metrics.solved(20.0)
    samples = metrics.read()
    assert samples.value("bhs_routing_solves_total") == 2
    assert samples.value("bhs_routing_solve_seconds") == 0.02
