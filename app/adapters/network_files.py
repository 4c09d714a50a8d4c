"""Network model files: the bundled JSON format and EPANET `.inp`, parsed at the edge.

The bootstrap loads the network through `load_network` and hands the core a
`Network`; the core itself reads no file and imports no parser.
"""
from __future__ import annotations

import json
from pathlib import Path

from app.services.network import Network, NetworkFileError


def load_network(path: Path | str) -> Network:
    path = Path(path)
    if path.suffix.lower() == ".inp":
        from app.adapters.epanet import load_inp  # optional extra: wntr
        return load_inp(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NetworkFileError(str(path), ["file not found"]) from None
    except json.JSONDecodeError as error:
        raise NetworkFileError(str(path), [f"line {error.lineno} column {error.colno}: {error.msg}"]) from None
    return Network.from_dict(data, source=str(path))
