"""CPU cost of the ingest pipeline's accept path, in process: no HTTP, no I/O.

What one accepted reading costs from decoded JSON to the live store: pydantic
validation, the record, the data-quality flags, the sensor cap and the store
(the pipeline's `ReadingsAccepted` goes to a bus with no handlers), then the
`/live` serializer the broadcaster runs over the same records. Two shapes:
single readings, one `ingest` call each (what POST /api/ingest does), and
batches of 100. 145 sensors, as the network model has. Prints CPU
microseconds per reading (process time, so other work on the machine counts
less), the best of REPEATS runs.

    python bench/accept_path.py [readings]
"""
from __future__ import annotations

import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import wire  # noqa: E402
from app.services.data_quality import DataQuality  # noqa: E402
from app.services.metrics import Metrics  # noqa: E402
from app.services.pipeline import IngestPipeline  # noqa: E402
from app.services.store import DataStore  # noqa: E402

READINGS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
SENSORS = 145
BATCH = 100
REPEATS = 7
NOW = 1_700_000_000.0


def items(count: int) -> list[dict]:
    return [{"sensor_id": f"S{i % SENSORS:03d}.flow", "value": 100.0 + (i % 97) / 7, "metric": "flow",
             "node_id": f"N{i % SENSORS:03d}", "zone": "Z_SOUTH"} for i in range(count)]


def pipeline() -> IngestPipeline:
    store = DataStore(SENSORS, 60, clock=lambda: NOW)
    return IngestPipeline(store, lambda event: None, Metrics(), annotators=[DataQuality().annotate],
                          clock=lambda: NOW)


def main() -> None:
    data = items(READINGS)
    batches = [data[i:i + BATCH] for i in range(0, READINGS, BATCH)]

    def singles() -> None:
        p = pipeline()
        for item in data:
            p.ingest([item], "http", batch=False)

    def batched() -> None:
        p = pipeline()
        for chunk in batches:
            p.ingest(chunk, "http")

    records = [r for chunk in batches for r in pipeline().ingest(chunk, "http")]

    def serialize() -> None:
        for start in range(0, READINGS, BATCH):
            wire.readings(records[start:start + BATCH])

    for name, run in (("single readings (pipeline + store)", singles),
                      (f"batches of {BATCH} (pipeline + store)", batched),
                      ("/live serializer (wire.readings)", serialize)):
        best = min(timeit.repeat(run, number=1, repeat=REPEATS, timer=time.process_time))
        print(f"{name:40s} {best / READINGS * 1e6:7.2f} us CPU/reading  ({READINGS} readings, best of {REPEATS})")


if __name__ == "__main__":
    main()
