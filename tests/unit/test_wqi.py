"""The CPCB Water Quality Index: DOMAIN.md's sub-index table, line by line, and its bands.

Values at each line's limits pin which line a limit belongs to (the table's
lines do not meet there); values just past a limit pin the limit itself.
"""
import pytest

from app.services.wqi import WqiStations, band, station_indices, sub_index, water_quality_index
from testkit.readings import reading


def test_the_worked_example_of_domain_md():
    # BOD 2.2, DO 5.5, FC 6, pH 7.6 gives about 83.2 (a Maharashtra PCB report).
    assert water_quality_index({"bod": 2.2, "do": 5.5, "fc": 6, "ph": 7.6}) == 83.2
    assert sub_index("bod", 2.2) == pytest.approx(96.67 - 7 * 2.2)
    assert sub_index("do", 5.5) == pytest.approx(-13.55 + 1.17 * 5.5 / 6.5 * 100)
    assert sub_index("ph", 7.6) == pytest.approx(316.96 - 29.85 * 7.6)


@pytest.mark.parametrize("do_mg_l, expected", [
    (0.0, 0.18),                     # 0 % saturation
    (1.3, 0.18 + 0.66 * 20),         # 20 %
    (2.6, 0.18 + 0.66 * 40),         # 40 % belongs to the first line (the second gives 33.25)
    (2.6325, -13.55 + 1.17 * 40.5),  # 40.5 %: just past the first line's limit
    (3.25, -13.55 + 1.17 * 50),      # 50 %
    (6.5, 100.0),                    # 100 %: 103.45, clipped
    (7.8, 163.34 - 0.62 * 120),      # 120 %
    (9.1, 163.34 - 0.62 * 140),      # 140 %
    (13.0, 163.34 - 0.62 * 200),     # past the table: its last line's decline carried on
])
def test_dissolved_oxygen_as_percent_saturation(do_mg_l, expected):
    assert sub_index("do", do_mg_l) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("mpn, expected", [
    (0.0, 97.2),
    (1.0, 97.2),
    (2.0, 97.2 - 26.6 * 0.30103),
    (1000.0, 97.2 - 26.6 * 3),       # 10^3 belongs to the first line (the second gives 19.08)
    (1001.0, 42.33 - 7.75 * 3.000434),
    (1e5, 42.33 - 7.75 * 5),         # 10^5 belongs to the second line (not the floor of 2)
    (100_001.0, 2.0),
    (1e7, 2.0),
])
def test_fecal_coliform(mpn, expected):
    assert sub_index("fc", mpn) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("ph, expected", [
    (1.0, 0.0),
    (2.0, 16.1 + 7.35 * 2),
    (4.0, 16.1 + 7.35 * 4),
    (5.0, -142.67 + 33.5 * 5),       # 5 begins the second line (the first gives 52.85)
    (5.5, -142.67 + 33.5 * 5.5),
    (7.0, -142.67 + 33.5 * 7),
    (7.3, 316.96 - 29.85 * 7.3),     # 7.3 begins the third (the second gives 101.88)
    (9.0, 316.96 - 29.85 * 9),
    (10.0, 96.17 - 8 * 10),          # 10 begins the fourth (the third gives 18.46)
    (10.5, 96.17 - 8 * 10.5),
    (12.0, 96.17 - 8 * 12),          # 0.17, the only value the clip's floor must not lift
    (12.01, 0.0),
    (13.0, 0.0),
])
def test_ph(ph, expected):
    assert sub_index("ph", ph) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("bod, expected", [
    (0.0, 96.67),
    (10.0, 96.67 - 70),              # 10 belongs to the first line (the second gives 26.6)
    (10.5, 38.9 - 1.23 * 10.5),
    (30.0, 2.0),
    (30.5, 2.0),                     # past 30 the floor, not the line's 1.39
    (100.0, 2.0),
])
def test_biochemical_oxygen_demand(bod, expected):
    assert sub_index("bod", bod) == pytest.approx(expected, abs=1e-9)


def test_other_metrics_have_no_sub_index():
    with pytest.raises(ValueError, match="turbidity"):
        sub_index("turbidity", 3.0)


@pytest.mark.parametrize("wqi, name", [
    (100.0, "good to excellent"), (63.0, "good to excellent"), (62.9, "medium to good"),
    (50.0, "medium to good"), (49.9, "bad"), (38.0, "bad"), (37.9, "bad to very bad"),
    (0.0, "bad to very bad"),
])
def test_bands_include_their_floor(wqi, name):
    assert band(wqi) == name


def test_a_partial_station_gets_the_weighted_mean_of_what_it_measures():
    # DO 6.5 mg/L (100) and BOD 10 (26.67): (0.31 x 100 + 0.19 x 26.67) / 0.5
    assert water_quality_index({"do": 6.5, "bod": 10.0}) == 72.1
    assert water_quality_index({"do": 6.5, "bod": 10.0, "turbidity": 80.0}) == 72.1
    assert water_quality_index({"do": 6.5}) is None                  # one of four is too few
    assert water_quality_index({"do": 6.5, "turbidity": 1.0}) is None


def test_station_indices_name_the_parameters_used_and_whether_all_four_were():
    stations = station_indices({
        "Z_B": {"do": 6.5, "bod": 10.0, "turbidity": 4.0},
        "Z_A": {"bod": 2.2, "do": 5.5, "fc": 6, "ph": 7.6},
        "Z_C": {"ph": 7.0},
    })
    assert stations == [
        {"node_id": "Z_A", "wqi": 83.2, "band": "good to excellent",
         "parameters": {"bod": 2.2, "do": 5.5, "fc": 6, "ph": 7.6}, "complete": True},
        {"node_id": "Z_B", "wqi": 72.1, "band": "good to excellent",
         "parameters": {"do": 6.5, "bod": 10.0}, "complete": False},
    ]


def test_stations_are_learned_from_readings_and_bad_readings_are_left_out():
    latest = {
        "K.do": reading("K.do", 6.5), "K.bod": reading("K.bod", 10.0),
        "F.do": reading("F.do", 5.5, quality="suspect"), "F.bod": reading("F.bod", 2.2, quality="bad"),
        "F.ph": reading("F.ph", 7.6), "F.flow": reading("F.flow", 120.0),
        "X.ph": reading("X.ph", 7.0), "X.do": reading("X.do", 6.5),
    }
    stations = WqiStations({"K": {"do": "K.do", "bod": "K.bod"}})
    stations.observe([
        reading("F.do", metric="do", node_id="FIELD"),
        reading("F.bod", metric="bod", node_id="FIELD"),
        reading("F.ph", metric="ph", node_id="FIELD"),
        reading("F.flow", metric="flow", node_id="FIELD"),   # not a WQI metric
        reading("X.ph", metric="ph", node_id=None),          # no station to give it to
        reading("X.do", metric="do", node_id=""),
    ])
    indices = stations.indices(latest.get)
    assert [(s["node_id"], s["wqi"], sorted(s["parameters"])) for s in indices] == [
        ("FIELD", round((0.31 * sub_index("do", 5.5) + 0.22 * sub_index("ph", 7.6)) / 0.53, 1), ["do", "ph"]),
        ("K", 72.1, ["bod", "do"]),
    ]
    # A sensor with no reading yet leaves its station out until it has enough.
    assert WqiStations({"K": {"do": "K.do", "bod": "K.none"}}).indices(latest.get) == []
