"""The sources file: the shape of the issue, the shipped example, and errors that name entry and field."""
import json
from pathlib import Path

import pytest

from app.adapters.sources.base import number
from app.adapters.sources.breaker import CircuitBreaker
from app.adapters.sources.config import SourcesFileError, load_sources, parse_sources

ROOT = Path(__file__).resolve().parents[2]


def example() -> dict:
    return json.loads((ROOT / "sources.example.json").read_text())


def test_the_shipped_example_has_every_type_and_loads():
    sources = load_sources(ROOT / "sources.example.json")
    assert {s.type for s in sources} == {"ogd", "open_meteo", "stac"}
    assert [s.provenance for s in sources if s.type == "stac"] == ["satellite:s2"]


@pytest.mark.parametrize("index, field, value, expected", [
    (2, "interval_s", 2, "entry 2 ('weather'): field 'interval_s'"),
    (0, "stations", {"KA-1": "no spaces please"}, "entry 0 ('kspcb-wq'): field 'stations.KA-1'"),
    (0, "timezone", "Mars/Olympus", "field 'timezone': Value error, unknown time zone"),
    (3, "water_bodies", {"SRC_TG_HALLI": [[77.3, 12.9]]}, "entry 3 ('s2'): field 'water_bodies.SRC_TG_HALLI'"),
    (1, "url", "ftp://x", "entry 1 ('cwc-storage'): field 'url'"),
    (2, "colour", "blue", "field 'colour': Extra inputs are not permitted"),
])
def test_bad_entry_names_entry_and_field(index, field, value, expected):
    data = example()
    data["sources"][index][field] = value
    with pytest.raises(SourcesFileError) as caught:
        parse_sources(data)
    assert expected in str(caught.value)


def test_intervals_down_to_five_seconds_are_valid():
    data = example()
    data["sources"][2]["interval_s"] = 5
    assert parse_sources(data)[2].interval_s == 5


def test_duplicate_ids_and_unknown_types_are_refused():
    data = example()
    data["sources"][1]["id"] = "kspcb-wq"
    with pytest.raises(SourcesFileError, match="entry 1 .*duplicate id"):
        parse_sources(data)
    data = example()
    data["sources"][0]["type"] = "wms"
    with pytest.raises(SourcesFileError, match="entry 0 .*field 'type'"):
        parse_sources(data)


def test_agency_values_parse_and_missing_marks_are_missing():
    assert number("7.6") == 7.6 and number(" 1,200 ") == 1200.0 and number(3) == 3.0
    assert all(number(mark) is None for mark in ("NA", "-", "", "n/a", None, True))
    with pytest.raises(ValueError):
        number("seven")


def test_breaker_pauses_with_growing_intervals_and_closes_on_success():
    breaker = CircuitBreaker(failures_to_open=3, interval_s=60, max_pause_s=1000)
    assert breaker.failed(0) == 60 and breaker.state(0) == "failing"
    breaker.failed(60)
    assert breaker.failed(120) == 120 and breaker.state(120) == "paused"
    assert breaker.failed(240) == 240 and breaker.failed(480) == 480
    assert breaker.failed(960) == 960 and breaker.failed(1920) == 1000     # capped
    breaker.succeeded()
    assert breaker.state(2000) == "ok" and breaker.failures == 0
