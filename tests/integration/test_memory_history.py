"""The embedded history serves the same /api/history as InfluxDB does."""

import pytest
import requests

from testkit.helpers import stamp



def test_embedded_history_raw_and_aggregated(server):
    import time
    base = (int(time.time()) // 60 - 5) * 60
    readings = [{"sensor_id": "mem-1", "value": float(i % 7), "timestamp": stamp(base + 10 * i)}
                for i in range(18)]                                   # 3 minutes
    assert requests.post(server.url + "/api/sensors", json=readings).status_code == 202
    raw = requests.get(server.url + "/api/history/mem-1", params={"start": "-10m"}).json()
    assert [p["v"] for p in raw["points"]] == [r["value"] for r in readings]
    maxes = requests.get(server.url + "/api/history/mem-1",
                         params={"start": "-10m", "every": "1m", "fn": "max"}).json()["points"]
    assert [p["v"] for p in maxes] == [max(r["value"] for r in readings[k:k + 6]) for k in (0, 6, 12)]
    last = requests.get(server.url + "/api/history/mem-1",
                        params={"start": "-10m", "every": "1m", "fn": "last"}).json()["points"]
    assert [p["v"] for p in last] == [readings[k + 5]["value"] for k in (0, 6, 12)]


@pytest.mark.parametrize("params, field", [
    ({"start": "yesterday"}, "start"), ({"every": "5 minutes"}, "every"),
    ({"every": "1m", "fn": "avg"}, "fn"), ({"start": "-1h", "stop": "-2h"}, "stop"),
])
def test_bad_history_parameters_are_422(server, params, field):
    reply = requests.get(server.url + "/api/history/mem-1", params=params)
    assert reply.status_code == 422
    assert reply.json()["error"]["details"][0]["field"] == field
