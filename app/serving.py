"""Options for the WSGI server of each async mode, shared by run.py and the bench's relay.

- eventlet: its server takes 1024 connections by default and past that even
  plain HTTP hangs (STACK-NOTES), so `max_size` is raised. It also re-capitalises
  every response header name on every response; Werkzeug already writes them
  capitalised (and HTTP names are case-insensitive), so that is turned off.
- gevent: pywsgi writes a response's headers and its body in two sends; with
  Nagle's algorithm on, the body then waits for the client's delayed ACK of
  the headers, about 40 ms, on every keep-alive request (single-reading ingest
  measured 170 requests/s for us and for a bare Flask app alike). The handler
  sets TCP_NODELAY on each accepted connection.
- threading: werkzeug's server needs nothing.
"""
from __future__ import annotations

import socket


def run_options(async_mode: str, max_connections: int) -> dict:
    """Keyword arguments for `socketio.run` in this mode."""
    if async_mode == "eventlet":
        return {"max_size": max_connections, "capitalize_response_headers": False}
    if async_mode == "gevent":
        return {"handler_class": _no_delay_handler()}
    return {}


def _no_delay_handler():
    from gevent import pywsgi

    class NoDelayHandler(pywsgi.WSGIHandler):
        def handle(self):
            try:
                self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:   # not TCP (a unix socket): nothing to tune
                pass
            return super().handle()

    return NoDelayHandler
