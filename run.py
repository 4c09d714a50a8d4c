"""Start the Bengaluru Heart System: `python run.py`.

The async mode is chosen before anything else is imported, because eventlet
must monkey-patch the standard library first (with no arguments: patching
only some modules breaks the app, see STACK-NOTES).
"""
import os
import warnings

from dotenv import dotenv_values

ASYNC_MODE = os.environ.get("ASYNC_MODE") or dotenv_values(".env").get("ASYNC_MODE") or "eventlet"
if ASYNC_MODE == "eventlet":
    # eventlet warns on import that it is in bugfix-only maintenance. We know,
    # and say so once in a single line at start-up (see main) instead.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

    eventlet.monkey_patch()
elif ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

import gc  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from app import create_app  # noqa: E402
from app.adapters.sources.config import SourcesFileError  # noqa: E402
from app.config import Settings  # noqa: E402
from app.serving import run_options  # noqa: E402

logger = logging.getLogger("bhs")


def settle_collector() -> None:
    """Keep what start-up built out of Python's full collections.

    Modules, the network model and the services live as long as the process.
    Left in the collector's oldest generation, every full collection walks
    them all: under the latency bench's load one took 80-120 ms (bench/latency.py
    --trace), and with one OS thread running every greenthread nothing else
    ran meanwhile, neither ingest nor any /live frame. Frozen, a full
    collection walks only the objects made since (a few ms)."""
    gc.collect()
    gc.freeze()


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
    except SourcesFileError as error:   # names the entry and field; no traceback
        logger.error("%s", error)
        sys.exit(2)
    socketio = app.extensions["socketio"]
    services = app.extensions["bhs"]

    def shut_down() -> None:
        logger.info("shutting down: stopping background tasks and flushing buffers")
        services.stop()
        logging.shutdown()
        # Buffers are flushed; the WSGI server holds nothing worth waiting for.
        os._exit(0)

    def on_signal(signum, frame) -> None:
        # Blocking work inside a signal handler breaks eventlet's hub
        # ("Cannot switch to MAINLOOP from MAINLOOP"), so do it in a task.
        socketio.start_background_task(shut_down)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services.start()
    settle_collector()
    logger.info("listening on http://%s:%s (async mode %s)", settings.host, settings.port,
                ASYNC_MODE)
    if ASYNC_MODE == "eventlet":
        logger.info("eventlet is in bugfix-only maintenance upstream; ASYNC_MODE=gevent or "
                    "threading run the same server (README, Configuration)")
    socketio.run(app, host=settings.host, port=settings.port, log_output=False,
                 allow_unsafe_werkzeug=True, **run_options(ASYNC_MODE, settings.max_connections))


if __name__ == "__main__":
    main()
