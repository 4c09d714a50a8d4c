"""Small networks written by hand, for tests whose answer can be worked out."""
from app.services.network import Network


def node(id, kind, **extra):
    return {"id": id, "kind": kind, "name": extra.pop("name", id), "lat": 12.9, "lon": 77.5, **extra}


def link(id, frm, to, capacity, kind="pipe", **extra):
    return {"id": id, "from": frm, "to": to, "kind": kind, "capacity": capacity, **extra}


def network(nodes, links, sensors=()):
    return Network.from_dict({"name": "test", "nodes": nodes, "links": links, "sensors": list(sensors)})
