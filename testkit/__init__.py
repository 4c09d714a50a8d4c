"""What the tests and the benchmarks share: real services on free loopback ports.

- `ports`: free loopback ports.
- `server`: the product as a user starts it (`python run.py`) in a process.
- `services`: Mosquitto and InfluxDB (with its v2 write bridge) from Debian's packages.
- `cluster_services`: Redis and nginx; `cluster_harness`: N instances, feeders, viewers.
- `browser`: how Debian's Chromium is launched.
- `helpers`: timestamps and polling; `readings`: reading records built for a test.

tests/ and bench/ import from here; this package imports from neither
(tests/unit/test_layers.py checks), so a benchmark never loads pytest fixtures.
"""
