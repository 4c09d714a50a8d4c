"""Under eventlet and gevent the engine's solve runs on an OS thread, so the server keeps serving.

HiGHS releases the GIL while it solves; on the event loop's own thread a
re-plan would hold every other greenlet (ingest, /live, /api/health) for its
whole length. Each mode runs in its own interpreter (monkey-patching), with
the app the bootstrap builds; a greenlet counts its turns, and the count is
read just before and just after the solve, from inside it.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from testkit.server import ROOT

SCRIPT = textwrap.dedent("""
    import sys
    mode = sys.argv[1]
    if mode == "eventlet":
        import eventlet
        eventlet.monkey_patch()
        spawn, pause = eventlet.spawn, lambda: eventlet.sleep(0)
    else:
        from gevent import monkey
        monkey.patch_all()
        import gevent
        spawn, pause = gevent.spawn, lambda: gevent.sleep(0)
    import json, tempfile
    from pathlib import Path
    from app import create_app
    from app.config import Settings

    folder = Path(tempfile.mkdtemp())
    app = create_app(Settings(_env_file=None, async_mode=mode, simulator="off",
                              operator_tokens="ops=t", instance_dir=folder / "instance"))
    engine = app.extensions["bhs"].engine
    turns = [0]
    running = [True]

    def count():
        while running[0]:
            turns[0] += 1
            pause()

    seen = {}
    solve = engine.model.solve

    def timed_solve(inputs):
        seen["before"] = turns[0]
        plan = solve(inputs)
        seen["after"] = turns[0]
        return plan

    engine.model.solve = timed_solve
    counter = spawn(count)
    pause()
    view = engine.run_once(["test"])
    running[0] = False
    counter.wait() if mode == "eventlet" else counter.join()
    print(json.dumps({"turns_during_solve": seen["after"] - seen["before"], "status": view.status}))
""")


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_other_greenlets_run_while_the_engine_solves(mode):
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "optimal"
    assert result["turns_during_solve"] > 0
