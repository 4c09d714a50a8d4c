"""Running several instances as one system (REDIS_URL set).

- `ports.py`: what the cluster needs of Redis, as small abstract ports with an
  in-memory fake for unit tests (app/adapters/redis_*.py are the real ones);
- `replication.py`: every accepted batch goes to a shared log, and every
  instance applies the log to its live store in order;
- `leadership.py`: one leader, by a lease it renews; only the leader plans and
  commands;
- `node.py`: the instance's part in the cluster: start-up rebuild, readiness,
  membership and the health view.

Without REDIS_URL none of this is built and the single process runs as it always has.
"""
